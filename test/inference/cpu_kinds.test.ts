/**
 * CPU kinds (issue 26): the AVX2 settings that scripts/test.sh's avx2 lane uses really put
 * libtorch, oneDNN and OpenBLAS on an AVX2-only CPU's kernels; bf16 convolutions and matmuls then
 * run (ATen's own kernels) instead of failing in oneDNN; int8 takes 7-bit activations without
 * VNNI; `auto` precision and the emulated-bf16 warning follow oneDNN's ISA.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { autoAmp } from '../../src/inference/precision.js';
import { buildInfo, int8ReducedRange, nativeBf16 } from '../../src/tensor/index.js';

const tensorIndex = new URL('../../src/tensor/index.js', import.meta.url).href;
const precision = new URL('../../src/inference/precision.js', import.meta.url).href;

/** What a child process sees under `env` (after one bf16 conv, transposed conv and linear). */
function probe(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const script = `
    import { autocast, buildInfo, F, int8ReducedRange, nativeBf16, noGrad, randn, warnEmulatedBf16 }
      from '${tensorIndex}';
    import { autoAmp } from '${precision}';
    noGrad(() => {
      const x = randn([1, 8, 6, 6]), w = randn([4, 8, 3, 3]);
      autocast('cpu', 'bfloat16', () => F.conv2d(x, w, null, { padding: 1 }));
      F.conv2d(x.to('bfloat16'), w.to('bfloat16'), null, { padding: 1 });
      autocast('cpu', 'bfloat16', () => F.linear(randn([3, 8]), randn([4, 8]), null));
    });
    const warnings = [];
    for (let i = 0; i < 2; i++) warnEmulatedBf16('cpu', (m) => warnings.push(m));
    const info = buildInfo();
    console.log(JSON.stringify({ isa: info.onednnIsa, aten: info.cpuCapability, blas: info.blasCore,
      reduced: int8ReducedRange(), bf16: nativeBf16(), auto: autoAmp('cpu'), warnings }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, `child under ${JSON.stringify(env)}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

const AVX2_OR_ABOVE = ['avx2', 'avx2_vnni', 'avx512_core', 'avx512_core_vnni', 'avx512_core_bf16', 'avx512_core_amx'];

test('the AVX2 settings take effect; bf16 runs there, int8 takes 7-bit activations, auto picks fp32', () => {
  const here = buildInfo().onednnIsa;
  assert.ok(here !== null, 'the addon reports the ISA oneDNN dispatches to');
  const capped = probe({
    ATEN_CPU_CAPABILITY: 'avx2',
    ONEDNN_MAX_CPU_ISA: 'AVX2',
    DNNL_MAX_CPU_ISA: 'AVX2',
    OPENBLAS_CORETYPE: process.arch === 'x64' ? 'Haswell' : '',
  });
  if (process.arch === 'x64' && AVX2_OR_ABOVE.includes(here)) {
    assert.equal(capped.isa, 'avx2');
    assert.equal(capped.aten, 'AVX2');
    assert.equal(capped.blas, 'Haswell');
    assert.equal(capped.reduced, true, 'no VNNI: 7-bit activations');
    assert.equal(capped.bf16, false);
    assert.equal(capped.auto, null, 'auto precision is fp32 without bf16 instructions');
    assert.equal((capped.warnings as string[]).length, 1, 'bf16 is said to be emulated, once');
    assert.match((capped.warnings as string[])[0]!, /emulated and slower than fp32/);
  }
  // this process: the choices follow the ISA oneDNN reports
  const vnni = ['avx2_vnni', 'avx512_core_vnni', 'avx512_core_bf16', 'avx512_core_amx'].includes(here);
  const bf16 = ['avx512_core_bf16', 'avx512_core_amx'].includes(here);
  assert.equal(nativeBf16(), bf16);
  assert.equal(autoAmp('cpu'), bf16 ? 'bfloat16' : null);
  assert.equal(autoAmp('cuda:0'), null);
  if (process.arch === 'x64') assert.equal(int8ReducedRange(), !vnni);
});
