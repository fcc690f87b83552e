// KernelLockAddon (addon.h): the descriptor search (fdinfo_search.h), on a
// waiter thread for the async API, on the caller's thread for the sync one.
#include "addon.h"

namespace kernel_lock {

namespace {

// (fields, pids | null, maxDescriptors, maxMs): TypeScript
// (src/proc/descriptors.ts) passes well-formed values.
FdinfoQuery QueryFrom(const Napi::CallbackInfo& info) {
  FdinfoQuery query;
  auto fields = info[0].As<Napi::Array>();
  query.fields.reserve(fields.Length());
  for (uint32_t i = 0; i < fields.Length(); ++i) {
    query.fields.push_back(fields.Get(i).As<Napi::String>().Utf8Value());
  }
  if (info[1].IsArray()) {
    auto pids = info[1].As<Napi::Array>();
    query.all_pids = false;
    query.pids.reserve(pids.Length());
    for (uint32_t i = 0; i < pids.Length(); ++i) query.pids.push_back(pids.Get(i).As<Napi::Number>().Int32Value());
  }
  double max = info[2].As<Napi::Number>().DoubleValue();
  // NaN or negative reads nothing; beyond 2^53 (Infinity) is no bound.
  query.max_descriptors = !(max > 0) ? 0 : max >= 9007199254740992.0 ? UINT64_MAX : static_cast<uint64_t>(max);
  query.max_ms = info[3].As<Napi::Number>().DoubleValue();
  return query;
}

}  // namespace

Napi::Value KernelLockAddon::SearchDescriptors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (hub_ == nullptr) return ThrowErrno(env, ENOMEM, "uv_async_init");
  auto* search = new AsyncFdinfoSearch(NextCompletionId(), hub_, QueryFrom(info));
  // Tracked before its thread takes it: it may post at once.
  hub_->Track(search);
  int err = search->Begin(env, info[4]);
  if (err != 0) {
    hub_->Untrack(search);
    delete search;
    return ThrowErrno(env, err, err == ENOMEM ? "napi_create_reference" : "pthread_create");
  }
  return Napi::Number::New(env, search->id());
}

Napi::Value KernelLockAddon::SearchDescriptorsSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::atomic<bool> never{false};
  FdinfoResult result;
  SearchFdinfo(QueryFrom(info), never, &result);
  napi_value value = FdinfoResultToJs(env, result);
  return value != nullptr ? Napi::Value(env, value) : env.Undefined();
}

}  // namespace kernel_lock
