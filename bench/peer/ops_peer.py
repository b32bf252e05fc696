#!/usr/bin/env python3
"""Single-op PyTorch timings (forward only) for comparison with beitseg's native kernels.

Ops (both 7.55 GFLOP per call):
  gemm_fp32 / gemm_bf16        (1600x768) @ (768x3072)            torch.matmul
  conv3x3_fp32 / conv3x3_bf16  conv2d 256->256, 3x3, padding 1, on 1x256x80x80, no bias
bf16 = both operands (and the weight) stored in bfloat16, no autocast.
--channels-last adds conv3x3_fp32_cl / conv3x3_bf16_cl (torch.channels_last inputs+weight).

Each op: --warmup calls, then --repeat timed calls, report the median.
Output: one JSON object on stdout, {op: {ms, gflops, min_ms}} (ms = median) plus a "_meta"
entry (threads, torch version, repeat, BLAS library and allocator actually used, and
cores_busy_ours / cores_busy_machine over the whole run: the dev machine's vCPUs are shared,
and a machine figure well above ours means the timings are inflated by other work).

fp32 GEMM goes through the BLAS library (Debian torch is BLAS_INFO=generic); by default the
script re-execs itself on OpenBLAS if one is available (--blas system keeps the reference
BLAS) and with jemalloc (--alloc, see _peer_env.py). Convolutions and bf16 GEMM go through
oneDNN.

Usage: /usr/bin/python3 bench/peer/ops_peer.py --threads 2 [--repeat 20] [--warmup 3]
                        [--channels-last] [--blas auto|openblas|system]
                        [--alloc auto|jemalloc|thp|glibc]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _peer_env  # noqa: E402

_peer_env.maybe_reexec()  # before torch is imported: pick OpenBLAS over the reference BLAS

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def bench(fn, warmup: int, repeat: int):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3, min(ts) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--repeat', type=int, default=20)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--channels-last', action='store_true')
    ap.add_argument('--blas', default='auto', choices=['auto', 'openblas', 'system'],
                    help='fp32 GEMM backend for Debian torch (see _peer_env.py); default auto')
    ap.add_argument('--alloc', default='auto', choices=['auto', 'jemalloc', 'thp', 'glibc'],
                    help='malloc used by torch (see _peer_env.py); default jemalloc if found')
    ap.add_argument('--ops', default='', help='comma list to restrict (e.g. gemm_fp32,conv3x3_bf16)')
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    m, k, n = 1600, 768, 3072
    gemm_flop = 2.0 * m * k * n
    cin, cout, hw = 256, 256, 80
    conv_flop = 2.0 * cin * cout * 9 * hw * hw

    a32 = torch.randn(m, k)
    b32 = torch.randn(k, n)
    x32 = torch.randn(1, cin, hw, hw)
    w32 = torch.randn(cout, cin, 3, 3) * (1.0 / (cin * 9) ** 0.5)

    cases = {}
    cases['gemm_fp32'] = (lambda: torch.matmul(a32, b32), gemm_flop)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    cases['gemm_bf16'] = (lambda: torch.matmul(a16, b16), gemm_flop)
    cases['conv3x3_fp32'] = (lambda: F.conv2d(x32, w32, None, 1, 1), conv_flop)
    x16, w16 = x32.bfloat16(), w32.bfloat16()
    cases['conv3x3_bf16'] = (lambda: F.conv2d(x16, w16, None, 1, 1), conv_flop)
    if args.channels_last:
        xcl = x32.contiguous(memory_format=torch.channels_last)
        wcl = w32.contiguous(memory_format=torch.channels_last)
        cases['conv3x3_fp32_cl'] = (lambda: F.conv2d(xcl, wcl, None, 1, 1), conv_flop)
        xcl16 = x16.contiguous(memory_format=torch.channels_last)
        wcl16 = w16.contiguous(memory_format=torch.channels_last)
        cases['conv3x3_bf16_cl'] = (lambda: F.conv2d(xcl16, wcl16, None, 1, 1), conv_flop)

    only = [s for s in args.ops.split(',') if s]
    out = {}
    meter = _peer_env.CpuMeter().start()
    with torch.no_grad():
        for name, (fn, flop) in cases.items():
            if only and name not in only:
                continue
            ms, ms_min = bench(fn, args.warmup, args.repeat)
            out[name] = {'ms': round(ms, 3), 'gflops': round(flop / (ms * 1e-3) / 1e9, 1),
                         'min_ms': round(ms_min, 3)}
    busy = meter.stop()
    out['_meta'] = {**busy, 'threads': args.threads, 'torch': torch.__version__,
                    'repeat': args.repeat, 'warmup': args.warmup, 'gflop_per_call': gemm_flop / 1e9,
                    'cpus': os.cpu_count(), **_peer_env.blas_meta()}
    print(json.dumps(out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
