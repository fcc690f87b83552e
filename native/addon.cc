// KernelLockAddon (addon.h): set-up and teardown of an environment, the
// shared out buffer, asynchronous waits through the wait hub, stats.
#include "addon.h"

namespace kernel_lock {

namespace {

// Environments get ids from one counter: the posix table tells them apart.
std::atomic<EnvId> g_next_env{1};

}  // namespace

Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall, const char* detail) {
  Napi::Error error = Napi::Error::New(env, detail != nullptr ? detail : syscall);
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

bool ReadPath(const Napi::Value& value, char* buffer, size_t size) {
  Napi::Env env = value.Env();
  // A string first: what every caller passes but the one with a non-UTF-8
  // name, and one N-API call instead of a type check and a conversion.
  size_t length = 0;
  napi_status status = napi_get_value_string_utf8(env, value, buffer, size, &length);
  if (status == napi_ok) {
    if (length < size - 1) return true;
    ThrowErrno(env, ENAMETOOLONG, "open");
    return false;
  }
  const char* bytes = nullptr;
  if (!BufferBytes(env, value, &bytes, &length)) {
    Napi::TypeError::New(env, "path must be a string or Buffer").ThrowAsJavaScriptException();
    return false;
  }
  if (length >= size) {
    ThrowErrno(env, ENAMETOOLONG, "open");
    return false;
  }
  std::memcpy(buffer, bytes, length);
  buffer[length] = '\0';
  return true;
}

KernelLockAddon::KernelLockAddon(Napi::Env env, Napi::Object exports)
    : env_id_(g_next_env.fetch_add(1)), hub_(WaitHub::Create(env, this)) {
  DefineAddon(exports, {
                           InstanceMethod("setOutBuffer", &KernelLockAddon::SetOutBuffer),
                           InstanceMethod("setRecord", &KernelLockAddon::SetRecord),
                           InstanceMethod("acquire", &KernelLockAddon::Acquire),
                           InstanceMethod("open", &KernelLockAddon::Open),
                           InstanceMethod("tryLock", &KernelLockAddon::TryLockFd),
                           InstanceMethod("unlock", &KernelLockAddon::UnlockFd),
                           InstanceMethod("getLock", &KernelLockAddon::GetLockFd),
                           InstanceMethod("finish", &KernelLockAddon::Finish),
                           InstanceMethod("verify", &KernelLockAddon::Verify),
                           InstanceMethod("release", &KernelLockAddon::Release),
                           InstanceMethod("close", &KernelLockAddon::Close),
                           InstanceMethod("wait", &KernelLockAddon::Wait),
                           InstanceMethod("cancelWait", &KernelLockAddon::CancelWait),
                           InstanceMethod("waitSync", &KernelLockAddon::WaitSync),
                           InstanceMethod("stats", &KernelLockAddon::Stats),
                           InstanceMethod("contentKind", &KernelLockAddon::ContentKind),
                           InstanceMethod("posixAcquire", &KernelLockAddon::PosixAcquire),
                           InstanceMethod("posixWaitTurn", &KernelLockAddon::PosixWaitTurn),
                           InstanceMethod("posixCancelTurn", &KernelLockAddon::PosixCancelTurn),
                           InstanceMethod("posixWaitTurnSync", &KernelLockAddon::PosixWaitTurnSync),
                           InstanceMethod("posixTryLock", &KernelLockAddon::PosixTryLock),
                           InstanceMethod("posixFinish", &KernelLockAddon::PosixFinish),
                           InstanceMethod("posixAbandon", &KernelLockAddon::PosixAbandon),
                           InstanceMethod("posixRelease", &KernelLockAddon::PosixRelease),
                           InstanceMethod("posixDescriptor", &KernelLockAddon::PosixDescriptor),
                           InstanceMethod("closeDescriptor", &KernelLockAddon::CloseDescriptorFd),
                           InstanceMethod("openReader", &KernelLockAddon::OpenReader),
                           InstanceMethod("searchDescriptors", &KernelLockAddon::SearchDescriptors),
                           InstanceMethod("searchDescriptorsSync", &KernelLockAddon::SearchDescriptorsSync),
                       });
  exports.Set("ofdSupported", Napi::Boolean::New(env, OfdSupported()));
  exports.Set("interruptSignal", Napi::Number::New(env, InterruptSignal()));
  exports.Set("waiterThreads", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                Napi::Array result = Napi::Array::New(info.Env(), 2);
                WaiterThreads& threads = WaiterThreads::Get();
                result.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(threads.Alive())));
                result.Set(1u, Napi::Number::New(info.Env(), static_cast<double>(threads.Idle())));
                return result;
              }));
}

Napi::Value KernelLockAddon::SetOutBuffer(const Napi::CallbackInfo& info) {
  auto array = info[0].As<Napi::Float64Array>();
  if (array.ElementLength() < kOutSlots) {
    Napi::RangeError::New(info.Env(), "out buffer too small").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  out_ref_ = Napi::Persistent(array);
  out_ = array.Data();
  return info.Env().Undefined();
}

Napi::Value KernelLockAddon::SetRecord(const Napi::CallbackInfo& info) {
  const char* data = nullptr;
  size_t length = 0;
  if (!BufferBytes(info.Env(), info[0], &data, &length)) {
    Napi::TypeError::New(info.Env(), "record must be a Buffer").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  stored_record_.assign(data, std::min(length, kRecordBuffer));
  if (++stored_token_ == 0) stored_token_ = 1;
  return Napi::Number::New(info.Env(), stored_token_);
}

Napi::Value KernelLockAddon::ThrowOpen(Napi::Env env, const OpenResult& result) {
  Napi::Value undefined = ThrowErrno(env, result.err, result.syscall);
  if (result.err == EINVAL || result.err == ELOOP || result.err == ENXIO) {
    // Attach the file type so the message can say what is in the way.
    Napi::Error pending = env.GetAndClearPendingException();
    pending.Set("fileType", Napi::String::New(env, FileTypeName(result.type)));
    pending.ThrowAsJavaScriptException();
  }
  return undefined;
}

Napi::Value KernelLockAddon::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array result = Napi::Array::New(env, 3);
  size_t pending = hub_ != nullptr ? hub_->Pending() : 0;
  result.Set(0u, Napi::Number::New(env, static_cast<double>(fds_.size() + owned_by_waits_)));
  result.Set(1u, Napi::Number::New(env, static_cast<double>(pending)));
  result.Set(2u, Napi::Number::New(env, static_cast<double>(PendingWaits::Get().Size())));
  return result;
}

Napi::Value KernelLockAddon::ContentKind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct stat st;
  if (::fstat(fd, &st) != 0) return ThrowErrno(env, errno, "fstat");
  return Napi::String::New(env, ContentName(ClassifyFile(fd, st.st_size)));
}

Napi::Value KernelLockAddon::Wait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto [flags, req] = LockArgsAt(info, 1);
  if (hub_ == nullptr) return ThrowErrno(env, ENOMEM, "uv_async_init");
  std::unique_ptr<GrantWork> work;
  if (info.Length() > 5 && !info[5].IsUndefined() && req.kind != Kind::kPosix) {
    char path[kPathBuffer];
    if (!ReadPath(info[5], path, sizeof(path))) return env.Undefined();
    std::string record;
    bool has_record = info.Length() > 6 && (info[6].IsString() || info[6].IsBuffer());
    if (has_record && info[6].IsBuffer()) {
      auto view = info[6].As<Napi::Buffer<char>>();
      record.assign(view.Data(), std::min(view.Length(), kRecordBuffer));
    } else if (has_record) {
      record = info[6].As<Napi::String>().Utf8Value();
    }
    double read_only = info.Length() > 7 ? info[7].As<Napi::Number>().DoubleValue() : 0;
    work.reset(new GrantWork(path, std::move(record), has_record, flags, read_only));
  }
  uint32_t id = NextCompletionId();
  bool owns = work != nullptr;
  auto* waiter = new AsyncWaiter(id, hub_, this, fd, req, env_id_, std::move(work));
  if (owns) {
    Untrack(fd);
    ++owned_by_waits_;
  }
  int err = waiter->Begin(env, info[4]);
  if (err != 0) {
    if (owns) {
      --owned_by_waits_;
      Track(waiter->TakeFd());
    }
    delete waiter;
    return ThrowErrno(env, err, err == ENOTSUP ? "sigaction" : "pthread_create");
  }
  hub_->Track(waiter);
  return Napi::Number::New(env, id);
}

Napi::Value KernelLockAddon::CancelWait(const Napi::CallbackInfo& info) {
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  Completion* found = hub_ != nullptr ? hub_->Find(id) : nullptr;
  if (found != nullptr) found->Stop();
  return info.Env().Undefined();
}

KernelLockAddon::~KernelLockAddon() {
  // Normally the hub's cleanup hook ran already (see wait_hub.h): every wait
  // was interrupted and joined. Stop any leftover anyway, before closing
  // the descriptors their threads are blocked on.
  if (hub_ != nullptr) hub_->OwnerGone();
  hub_ = nullptr;
  PosixTable& table = PosixTable::Get();
  // This environment's posix locks: one turn holder per inode, so unlocking
  // the whole file drops exactly its lock; the next acquirer gets the turn.
  for (int fd : posix_turns_) table.UnlockAndPassTurn(fd, LockRequest{Kind::kPosix, false, 0, 0});
  posix_turns_.clear();
  for (const auto& joined : posix_joins_) {
    for (int i = 0; i < joined.second; ++i) table.Leave(joined.first);
  }
  posix_joins_.clear();
  fds_.ForEach([&table](int fd) { table.Close(fd); });
  fds_.clear();
}

NODE_API_ADDON(KernelLockAddon)

}  // namespace kernel_lock
