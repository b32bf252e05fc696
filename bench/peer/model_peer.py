#!/usr/bin/env python3
"""Whole-model PyTorch timings of the BEiT-UperNet peer (bench/peer/beit_upernet.py) on CPU.

Phases (each one its own subprocess when --phase all, so peak RSS is per phase):
  infer_fp32  one SxS window, eval + torch.no_grad, fp32               ms per window
  infer_bf16  same under torch.autocast('cpu', dtype=torch.bfloat16)   ms per window
  infer_int8  same after torch.ao.quantization.quantize_dynamic of every nn.Linear
              (qint8, per-channel weights: per_channel_dynamic_qconfig), the rest fp32
  infer_int8_bf16  the quantized model under bf16 autocast (int8 Linears, the rest bf16)
              At --size 1280 infer_* is whole-image inference of a 1280x1280 image (N = 6401).
  slide_fp32  slide inference (crop S, stride round(S*426/640)) of an S x round(S*853/640)
              image = 2 windows (640x853 at S=640), + argmax          ms per image
  train_fp32  batch 2 SxS, train mode (DropPath, Dropout2d, batch-stat BN):
              forward + mmseg loss (decode 1.0 + aux 0.4) + backward + AdamW (layer decay)
              step + zero_grad                                         ms per step
Random weights (seed 0); the model's img_size = S, so the window matches the size.
Each phase: --warmup untimed iterations (default 1), then the median of --repeat (default 2)
timed ones. peak_rss_mb = getrusage(RUSAGE_SELF).ru_maxrss of the phase's process
(model build included); rss_model_mb = the same right after the model was built.
Contention record (the dev machine's 2 vCPUs are shared with other work): cores_busy_ours =
this process's CPU time / wall time over the timed runs, cores_busy_machine = the same for
the whole machine (/proc/stat), cpu_ms_per_iter = this process's CPU time per timed run.
When cores_busy_machine - cores_busy_ours is well above 0, other work competed and `ms`
is inflated.

Output: one JSON line per phase:
  {"phase", "preset", "size", "threads", "ms", "ms_all", "peak_rss_mb", "rss_model_mb", ...}

Usage:
  /usr/bin/python3 bench/peer/model_peer.py --preset base --threads 2 [--phase all|infer_fp32|
      infer_bf16|slide_fp32|train_fp32] [--size 640] [--repeat 2] [--warmup 1]
      [--blas auto|openblas|system] [--alloc auto|jemalloc|thp|glibc]

Environment (see _peer_env.py): by default the script re-execs itself with OpenBLAS instead
of Debian's reference BLAS and with jemalloc retaining freed pages, because on this VM
stock glibc malloc makes every fresh large tensor pay ~0.4 GB/s first-touch page faults
(--alloc glibc measures that stock behaviour). Both choices are recorded in the output.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import _peer_env  # noqa: E402

_peer_env.maybe_reexec()  # before torch is imported: OpenBLAS instead of the reference BLAS

import torch  # noqa: E402

from beit_upernet import build_adamw, build_segmentor  # noqa: E402

PHASES = ('infer_fp32', 'infer_bf16', 'infer_int8', 'infer_int8_bf16', 'slide_fp32', 'train_fp32')


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


CPU_STATS = {}


def cpu_model() -> str:
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    return 'cpu'


def cpu_capability() -> str:
    """ATen's kernel ISA (torch.backends.cpu.get_cpu_capability() from torch 2.0; 1.13 only
    prints it in torch.__config__.show())."""
    backends_cpu = getattr(torch.backends, 'cpu', None)
    if backends_cpu is not None and hasattr(backends_cpu, 'get_cpu_capability'):
        return backends_cpu.get_cpu_capability()
    for line in torch.__config__.show().splitlines():
        if 'CPU capability usage:' in line:
            return line.split(':', 1)[1].strip()
    return 'unknown'


def timed(fn, warmup: int, repeat: int):
    """Median of `repeat` timed calls after `warmup` untimed ones. Also records how many
    cores this process and the whole machine kept busy during the timed calls (a machine
    figure well above ours means other work competed for the CPUs)."""
    for _ in range(warmup):
        fn()
    ts = []
    meter = _peer_env.CpuMeter().start()
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    CPU_STATS.update(meter.stop())
    # CPU time this process used per timed iteration (user+sys, all threads): less
    # sensitive to other tenants than wall time, but includes OpenMP spin-waiting.
    CPU_STATS['cpu_ms_per_iter'] = round(meter.cpu_s / max(repeat, 1) * 1e3, 1)
    return statistics.median(ts), ts


def run_phase(args) -> dict:
    torch.set_num_threads(args.threads)
    s = args.size
    model = build_segmentor(args.preset, seed=0, img_size=s)
    rss_model = rss_mb()
    g = torch.Generator().manual_seed(1)
    extra = {}

    if args.phase in ('infer_fp32', 'infer_bf16', 'infer_int8', 'infer_int8_bf16'):
        model.eval()
        x = torch.randn(1, 3, s, s, generator=g)
        if args.phase.startswith('infer_int8'):
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
            fp32_model = model
            model = quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
            if args.phase == 'infer_int8_bf16':
                # quantized::linear_dynamic refuses bf16 inputs ("data type of input should be
                # float"): cast what autocast hands each quantized Linear back to fp32
                for mod in model.modules():
                    if type(mod).__module__.startswith('torch.ao.nn.quantized.dynamic'):
                        mod.register_forward_pre_hook(lambda _m, args_: tuple(a.float() for a in args_))

        def step():
            with torch.no_grad():
                if args.phase in ('infer_bf16', 'infer_int8_bf16'):
                    with torch.autocast('cpu', dtype=torch.bfloat16):
                        y = model.encode_decode(x)
                else:
                    y = model.encode_decode(x)
            return y
        ms, ts = timed(step, args.warmup, args.repeat)
        extra['unit'] = 'ms per window'
        if args.phase.startswith('infer_int8'):
            extra['peak_rss_mb'] = round(rss_mb(), 1)  # the timed runs only: fp32 follows
            with torch.no_grad():
                a = fp32_model.encode_decode(x).argmax(1)
                with torch.autocast('cpu', dtype=torch.bfloat16, enabled=args.phase == 'infer_int8_bf16'):
                    b = model.encode_decode(x).argmax(1)
            extra['argmax_agreement_vs_fp32'] = (a == b).float().mean().item()

    elif args.phase == 'slide_fp32':
        model.eval()
        h, w = s, int(round(s * 853 / 640))
        stride = int(round(s * 426 / 640))
        x = torch.randn(1, 3, h, w, generator=g)
        nwin = len(model.slide_windows(h, w, (s, s), (stride, stride)))

        def step():
            with torch.no_grad():
                logits = model.slide_inference(x, crop_size=(s, s), stride=(stride, stride))
                return logits.argmax(1)
        ms, ts = timed(step, args.warmup, args.repeat)
        extra.update(unit='ms per image', image_hw=[h, w], stride=stride, windows=nwin,
                     ms_per_window=None)
        extra['ms_per_window'] = round(ms / nwin, 1)

    elif args.phase == 'train_fp32':
        model.train()
        b = args.batch
        x = torch.randn(b, 3, s, s, generator=g)
        nc = model.cfg['num_classes']
        label = torch.randint(0, nc, (b, s, s), generator=g)
        label[:, : s // 8] = 255  # some ignored pixels, as in padded ADE crops
        lr = 3e-5 if model.cfg['num_layers'] < 24 else 2e-5
        opt = build_adamw(model, lr=lr, weight_decay=0.05)

        def step():
            losses = model.loss(x, label)
            losses['total'].backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            return losses['total'].item()
        ms, ts = timed(step, args.warmup, args.repeat)
        extra.update(unit='ms per step', batch=b)
    else:
        raise SystemExit(f'unknown phase {args.phase}')

    out = dict(phase=args.phase, preset=args.preset, size=s, threads=args.threads,
                ms=round(ms, 1), ms_all=[round(t, 1) for t in ts],
                peak_rss_mb=round(rss_mb(), 1), rss_model_mb=round(rss_model, 1),
                cpu=cpu_model(), cpu_capability=cpu_capability(),
                quantized_engine=torch.backends.quantized.engine,
                warmup=args.warmup, repeat=args.repeat, torch=torch.__version__,
                blas=_peer_env.blas_meta()['blas'], alloc=_peer_env.blas_meta()['alloc'],
                blas_core=_peer_env.blas_meta()['blas_core'],
                omp_wait_policy=os.environ.get('OMP_WAIT_POLICY', ''), **CPU_STATS)
    out.update(extra)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--preset', default='base', choices=['base', 'large', 'tiny'])
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--phase', default='all', choices=('all',) + PHASES)
    ap.add_argument('--phases', default='', help='comma list for --phase all (default: all four)')
    ap.add_argument('--size', type=int, default=640)
    ap.add_argument('--repeat', type=int, default=2)
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--batch', type=int, default=2, help='train batch size')
    ap.add_argument('--blas', default='auto', choices=['auto', 'openblas', 'system'],
                    help='fp32 BLAS for Debian torch (see _peer_env.py)')
    ap.add_argument('--alloc', default='auto', choices=['auto', 'jemalloc', 'thp', 'glibc'],
                    help='malloc used by torch (see _peer_env.py); default jemalloc if found')
    args = ap.parse_args()

    if args.size % 16:
        raise SystemExit('--size must be a multiple of 16')

    if args.phase != 'all':
        print(json.dumps(run_phase(args)), flush=True)
        return 0

    phases = [p for p in args.phases.split(',') if p] or list(PHASES)
    rc = 0
    for ph in phases:
        cmd = [sys.executable, os.path.abspath(__file__), '--phase', ph,
               '--preset', args.preset, '--threads', str(args.threads), '--size', str(args.size),
               '--repeat', str(args.repeat), '--warmup', str(args.warmup),
               '--batch', str(args.batch), '--blas', args.blas, '--alloc', args.alloc]
        r = subprocess.run(cmd)  # child inherits the BLAS env of this (re-exec'd) process
        if r.returncode != 0:
            print(json.dumps({'phase': ph, 'preset': args.preset, 'size': args.size,
                              'threads': args.threads, 'error': f'exit {r.returncode}'}),
                  flush=True)
            rc = 1
    return rc


if __name__ == '__main__':
    sys.exit(main())
