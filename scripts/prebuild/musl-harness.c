// Loads a kernel-lock binary the way Node does on a musl system, with musl's
// real dynamic loader, for the load matrix (scripts/prebuild/load-matrix.mjs):
// no Node built for musl can be had here (no Alpine root file system is
// reachable; Bun's musl build needs Alpine's libstdc++). dlopen(RTLD_NOW)
// binds every symbol the binary imports (libc's from musl; N-API's and
// libuv's from this program, which exports a stub for each function
// node_api.h and uv.h declare, in the generated napi-stubs.c) and runs its
// constructors (the static libc++'s among them); then the binary's own N-API
// version entry point is called. A binary needing a glibc-only symbol, a
// library musl lacks or anything a Node does not export fails here, naming it.
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s file.node\n", argv[0]);
    return 2;
  }
  void* handle = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) {
    printf("{\"loaded\":false,\"error\":\"%s\"}\n", dlerror());
    return 1;
  }
  int (*version)(void) = (int (*)(void))dlsym(handle, "node_api_module_get_api_version_v1");
  void* init = dlsym(handle, "napi_register_module_v1");
  printf("{\"loaded\":true,\"napi\":%d,\"init\":%s}\n", version ? version() : -1, init ? "true" : "false");
  return version && init ? 0 : 1;
}
