# Cross-compiles the addon for linux-arm64 from x86-64 with Debian's aarch64-linux-gnu toolchain
# (scripts/check-arm64.sh passes it to cmake-js). Node-API needs no Node library to link against,
# and node-addon-api's headers are the same for every architecture.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
