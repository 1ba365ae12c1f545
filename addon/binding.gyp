{
  "targets": [
    {
      "target_name": "llem_native",
      "sources": ["src/loader.cc", "src/sampler.cc", "src/gpu_settings.cc", "src/process_tree.cc", "src/addon.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags": ["-fvisibility=hidden", "-Wall"],
      "cflags_cc": ["-fvisibility=hidden", "-Wall", "-std=c++17", "-fexceptions"],
      "libraries": ["-ldl", "-lpthread"]
    }
  ]
}
