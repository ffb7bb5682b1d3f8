{
  # The same addon as CMakeLists.txt, built with node-gyp (npm run build:gyp). LibTorch's paths
  # come from the same resolver, scripts/find-libtorch.mjs.
  "targets": [
    {
      "target_name": "lenet5_native",
      "sources": [
        "native/addon.cc",
        "native/core/allocator.cc", "native/core/dataset.cc", "native/core/device.cc", "native/core/errors.cc", "native/core/export.cc", "native/core/lenet.cc",
        "native/core/model.cc", "native/core/optimizer.cc", "native/core/serialization.cc", "native/core/trainer.cc",
        "native/core/engine/engine.cc", "native/core/engine/isa_avx2.cc", "native/core/engine/isa_avx512.cc",
        "native/core/engine/isa_baseline.cc", "native/core/engine/kernels.cc", "native/core/engine/worker_pool.cc",
        "native/core/engine/int8.cc", "native/core/engine/int8_avx2.cc", "native/core/engine/int8_avx512vnni.cc", "native/core/engine/int8_baseline.cc",
        "native/core/engine/int8_neon.cc", "native/core/engine/int8_neondot.cc",
        "native/js/dataset.cc", "native/js/errors.cc", "native/js/job.cc", "native/js/model.cc", "native/js/optimizer.cc", "native/js/quantized.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/find-libtorch.mjs --gyp include)"
      ],
      # ATen's per-operator headers only (CMakeLists.txt says why).
      "defines": [ "NAPI_VERSION=8", "NODE_ADDON_API_CPP_EXCEPTIONS", "AT_PER_OPERATOR_HEADERS", "TORCH_ASSERT_ONLY_METHOD_OPERATORS", "<!@(node scripts/find-libtorch.mjs --gyp defines)" ],
      "cflags!": [ "-fno-exceptions", "-fno-rtti" ],
      "cflags_cc!": [ "-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20" ],
      "cflags_cc": [ "<!@(node scripts/find-libtorch.mjs --gyp std)", "-fexceptions", "-frtti", "-O3", "-ffp-contract=fast", "-Wno-unused-parameter" ],
      "libraries": [
        "-L<!@(node scripts/find-libtorch.mjs --gyp libdir)",
        "-Wl,-rpath,<!@(node scripts/find-libtorch.mjs --gyp libdir)",
        "<!@(node scripts/find-libtorch.mjs --gyp libs)",
        "-ldl"
      ]
    }
  ]
}
