{
  "targets": [
    {
      "target_name": "kernel_lock",
      "sources": [
        "native/addon.cc",
        "native/addon_fdinfo.cc",
        "native/addon_lock.cc",
        "native/addon_posix.cc",
        "native/addon_reader.cc",
        "native/async_turn.cc",
        "native/async_waiter.cc",
        "native/fdinfo_search.cc",
        "native/grant.cc",
        "native/interrupt.cc",
        "native/lock_ops.cc",
        "native/pending_waits.cc",
        "native/posix_table.cc",
        "native/record_content.cc",
        "native/wait_hub.cc",
        "native/waiter.cc",
        "native/waiter_threads.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"],
      "cflags_cc": ["-std=c++17", "-fno-exceptions", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"],
      "ldflags": ["-pthread"],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": ["-Wall", "-Wextra", "-fno-exceptions"],
        "MACOSX_DEPLOYMENT_TARGET": "11.0"
      },
      "conditions": [
        ["OS=='win'", { "type": "none" }]
      ]
    }
  ]
}
