// The LibTorch resolver (scripts/find-libtorch.mjs) on LIBTORCH folders laid out as the LibTorch
// releases lay them out, made here with only the files it reads.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { root, tempDir } from './helpers.js';

const dir = tempDir();

function fakeLibtorch(name: string, files: Record<string, string>): string {
  const libtorch = join(dir, name);
  mkdirSync(join(libtorch, 'lib'), { recursive: true });
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(libtorch, path)), { recursive: true });
    writeFileSync(join(libtorch, path), text);
  }
  return libtorch;
}

function describeLibtorch(libtorch: string): { version: string; cxx11Abi: boolean; cxxStandard: number } {
  const out = execFileSync(process.execPath, [join(root, 'scripts/find-libtorch.mjs'), '--json'], {
    env: { ...process.env, LIBTORCH: libtorch },
    encoding: 'utf8',
  });
  return JSON.parse(out) as { version: string; cxx11Abi: boolean; cxxStandard: number };
}

const versionLines = (major: number, minor: number, patch: number) =>
  `#define TORCH_VERSION_MAJOR ${major}\n#define TORCH_VERSION_MINOR ${minor}\n#define TORCH_VERSION_PATCH ${patch}\n`;

describe('find-libtorch.mjs with LIBTORCH', () => {
  it("reads the version from 1.x's torch/version.h and the C++ ABI from TorchConfig.cmake", () => {
    const libtorch = fakeLibtorch('libtorch-1.13', {
      'include/torch/csrc/api/include/torch/version.h': versionLines(1, 13, 1),
      'share/cmake/Torch/TorchConfig.cmake': 'set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=0")\n',
    });
    expect(describeLibtorch(libtorch)).toMatchObject({ version: '1.13.1', cxx11Abi: false, cxxStandard: 17 });
  });

  it("reads the version of LibTorch >= 2.10 from torch/headeronly/version.h, which the API's version.h includes", () => {
    const libtorch = fakeLibtorch('libtorch-2.15', {
      'include/torch/csrc/api/include/torch/version.h': '#include <torch/headeronly/version.h>\n',
      'include/torch/headeronly/version.h': versionLines(2, 15, 0),
      'include/torch/csrc/api/include/torch/all.h': '#error "C++20 or later compiler required"\n',
    });
    expect(describeLibtorch(libtorch)).toMatchObject({ version: '2.15.0', cxx11Abi: true, cxxStandard: 20 });
  });
});
