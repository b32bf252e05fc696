#!/usr/bin/env python3
"""GPU peer timings: HF transformers BeitForSemanticSegmentation vs bench/peer/beit_upernet.py.

For an NVIDIA machine (H100) with PyTorch 2.x and HF transformers installed; not meant for
the CPU development machine.

Models (random init, seed 0), BEiT-B UperNet 640 sizes by default (--preset large: BEiT-L):
  hf    BeitForSemanticSegmentation(BeitConfig(hidden 768, 12 layers, 12 heads, image 640,
        relative position bias per layer, auxiliary head, out_indices [3,5,7,11], 150 labels))
  ours  bench/peer/beit_upernet.py (mmseg math and key names)

Measurements (per model; CUDA-synchronised wall time, warm-up then median of --repeat):
  infer_fp32         ms per 640 window (batch --infer-batch, default 1), eval + no_grad
  infer_fp16         same under torch.autocast('cuda', dtype=torch.float16)
  infer_bf16         same under torch.autocast('cuda', dtype=torch.bfloat16)
  infer_fp16_b4      fp16 with 4 windows per forward (ms per window); any infer_<p>_b<N>
  backbone_<p>[_b<N>] the same for the backbone alone (where the time goes)
  train_bs2_fp32     forward + loss + backward + AdamW step, batch 2, fp32
  train_bs2_amp      same with AMP fp16 autocast + GradScaler
  train_bs8_amp      same at batch 8
and peak_gb = torch.cuda.max_memory_allocated() / 2**30 during each (reset before each).
HF inference returns 1/4-resolution logits (its forward does not upsample); ours times
mmseg's encode_decode, which includes the bilinear resize of the logits to 640x640.

Output: one JSON object on stdout: {"meta": {...}, "hf": {phase: {ms, ms_all, peak_gb}},
"ours": {...}}. Progress lines go to stderr.

Usage:
  python gpu_peer.py [--preset base|large] [--models hf,ours] [--repeat 10] [--warmup 3]
                     [--phases infer_fp32,infer_fp16,train_bs2_fp32,train_bs2_amp,train_bs8_amp]
                     [--tf32] [--out result.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)

ALL_PHASES = ('infer_fp32', 'infer_fp16', 'infer_bf16', 'infer_fp16_b4', 'train_bs2_fp32', 'train_bs2_amp',
              'train_bs8_amp')


def _valid_phase(p: str) -> bool:
    parts = p.split('_')
    if parts[0] in ('infer', 'backbone'):
        return (len(parts) in (2, 3) and parts[1] in ('fp32', 'fp16', 'bf16')
                and (len(parts) == 2 or (parts[2].startswith('b') and parts[2][1:].isdigit())))
    return p in ALL_PHASES


def _fail(msg: str, code: int = 2):
    print(json.dumps({'error': msg}))
    print(f'gpu_peer.py: {msg}', file=sys.stderr)
    sys.exit(code)


try:
    import torch
except ImportError as e:  # pragma: no cover
    _fail(f'PyTorch is not installed ({e})')


def _require_cuda():
    if not torch.cuda.is_available():
        _fail(f'CUDA is not available (torch {torch.__version__}, built with CUDA '
              f'{torch.version.cuda}); run this on the GPU machine')
    if int(torch.__version__.split('.')[0]) < 2:
        print(f'warning: torch {torch.__version__} < 2.0; results are not comparable to the '
              'anchors (PyTorch 2.x)', file=sys.stderr)


def _import_hf():
    try:
        import transformers
        from transformers import BeitConfig, BeitForSemanticSegmentation
    except ImportError as e:
        return None, f'HF transformers with BEiT is not installed ({e}); pip install transformers'
    return (transformers, BeitConfig, BeitForSemanticSegmentation), None


SIZES = {
    'base': dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, out_indices=[3, 5, 7, 11], layer_scale_init_value=0.1,
                 drop_path_rate=0.1),
    'large': dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                  intermediate_size=4096, out_indices=[7, 11, 15, 23],
                  layer_scale_init_value=1e-6, drop_path_rate=0.2),
}


def build_hf(preset: str, image_size: int):
    mods, err = _import_hf()
    if mods is None:
        raise RuntimeError(err)
    transformers, BeitConfig, BeitForSemanticSegmentation = mods
    cfg = BeitConfig(
        image_size=image_size, patch_size=16, num_channels=3,
        use_relative_position_bias=True, use_shared_relative_position_bias=False,
        use_absolute_position_embeddings=False, use_mask_token=False, use_mean_pooling=True,
        use_auxiliary_head=True, auxiliary_channels=256, auxiliary_num_convs=1,
        auxiliary_concat_input=False, auxiliary_loss_weight=0.4, pool_scales=[1, 2, 3, 6],
        semantic_loss_ignore_index=255, num_labels=150, layer_norm_eps=1e-6,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **SIZES[preset])
    torch.manual_seed(0)
    model = BeitForSemanticSegmentation(cfg)
    info = {'transformers': transformers.__version__,
            'attn_implementation': getattr(model.config, '_attn_implementation', None)}
    return model, info


def build_ours(preset: str, image_size: int):
    from beit_upernet import build_segmentor
    return build_segmentor(preset, seed=0, img_size=image_size), {}


class Runner:
    def __init__(self, kind: str, model, device):
        self.kind = kind
        self.model = model.to(device)
        self.device = device

    def infer(self, x, backbone_only: bool = False):
        if backbone_only:
            return self.model.beit(pixel_values=x) if self.kind == 'hf' else self.model.backbone(x)
        if self.kind == 'hf':
            return self.model(pixel_values=x).logits
        return self.model.encode_decode(x)

    def loss(self, x, y):
        if self.kind == 'hf':
            return self.model(pixel_values=x, labels=y).loss
        return self.model.loss(x, y)['total']


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _time(fn, warmup: int, repeat: int):
    for _ in range(warmup):
        fn()
    _sync()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync()
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts), ts


def run_phase(r: Runner, phase: str, args, size: int) -> dict:
    dev = r.device
    g = torch.Generator(device='cpu').manual_seed(1)
    on_gpu = dev.type == 'cuda'
    amp_device = 'cuda' if on_gpu else 'cpu'  # --smoke-cpu: the same code path, bf16 autocast
    if on_gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    if phase.startswith('infer') or phase.startswith('backbone'):
        r.model.eval()
        backbone_only = phase.startswith('backbone')
        parts = phase.split('_')
        b = int(parts[2][1:]) if len(parts) == 3 else args.infer_batch
        x = torch.randn(b, 3, size, size, generator=g).to(dev)
        amp = {'fp16': torch.float16 if on_gpu else torch.bfloat16, 'bf16': torch.bfloat16}.get(parts[1])

        def step():
            # no_grad, as mmengine's test loop: HF caches tensors made in the forward
            # (interpolated position bias), and inference-mode tensors would break training later
            with torch.no_grad():
                if amp is not None:
                    with torch.autocast(amp_device, dtype=amp):
                        return r.infer(x, backbone_only)
                return r.infer(x, backbone_only)
        ms, ts = _time(step, args.warmup, args.repeat)
        res = {'ms': round(ms / b, 2), 'ms_all': [round(t / b, 2) for t in ts],
               'unit': 'ms per window', 'batch': b}
    else:
        b = 8 if 'bs8' in phase else 2
        amp = phase.endswith('_amp')
        r.model.train()
        x = torch.randn(b, 3, size, size, generator=g).to(dev)
        y = torch.randint(0, 150, (b, size, size), generator=g)
        y[:, : size // 8] = 255
        y = y.to(dev)
        opt = torch.optim.AdamW(r.model.parameters(), lr=3e-5, weight_decay=0.05)
        try:
            scaler = torch.amp.GradScaler('cuda', enabled=amp and on_gpu)
        except (AttributeError, TypeError):
            scaler = torch.cuda.amp.GradScaler(enabled=amp and on_gpu)

        def step():
            with torch.autocast(amp_device, dtype=torch.float16 if on_gpu else torch.bfloat16, enabled=amp):
                loss = r.loss(x, y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
        ms, ts = _time(step, args.warmup, args.repeat)
        res = {'ms': round(ms, 2), 'ms_all': [round(t, 2) for t in ts],
               'unit': 'ms per step', 'batch': b}
        del opt, scaler
    res['peak_gb'] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 3) if on_gpu else 0.0
    return res


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--preset', default='base', choices=['base', 'large'])
    ap.add_argument('--size', type=int, default=640)
    ap.add_argument('--models', default='hf,ours')
    ap.add_argument('--phases', default=','.join(ALL_PHASES))
    ap.add_argument('--repeat', type=int, default=10)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--infer-batch', type=int, default=1)
    ap.add_argument('--tf32', action='store_true', help='allow TF32 matmul/conv (default off '
                    'for matmul, PyTorch default for cuDNN)')
    ap.add_argument('--out', default='')
    ap.add_argument('--smoke-cpu', action='store_true', help='run the same code on the CPU (a check '
                    'of this script without a GPU; timings meaningless)')
    args = ap.parse_args()

    if not args.smoke_cpu:
        _require_cuda()
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    dev = torch.device('cpu' if args.smoke_cpu else 'cuda')
    models = [m for m in args.models.split(',') if m]
    phases = [p for p in args.phases.split(',') if p]
    for p in phases:
        if not _valid_phase(p):
            _fail(f'unknown phase {p}; choose from {ALL_PHASES}')
    if 'hf' in models:
        mods, err = _import_hf()
        if mods is None:
            _fail(err + ' (or pass --models ours)')

    out = {'meta': {
        'device': 'cpu' if args.smoke_cpu else torch.cuda.get_device_name(0), 'torch': torch.__version__,
        'cuda': torch.version.cuda, 'preset': args.preset, 'size': args.size,
        'repeat': args.repeat, 'warmup': args.warmup,
        'tf32_matmul': torch.backends.cuda.matmul.allow_tf32,
        'tf32_cudnn': torch.backends.cudnn.allow_tf32}}
    for name in models:
        builder = build_hf if name == 'hf' else build_ours
        model, info = builder(args.preset, args.size)
        nparams = sum(p.numel() for p in model.parameters())
        r = Runner(name, model, dev)
        res = {'_info': dict(info, params=nparams)}
        for ph in phases:
            try:
                res[ph] = run_phase(r, ph, args, args.size)
            except torch.cuda.OutOfMemoryError as e:  # type: ignore[attr-defined]
                res[ph] = {'error': f'OOM: {str(e)[:200]}'}
                torch.cuda.empty_cache()
            except Exception as e:  # one failing phase must not lose the others
                res[ph] = {'error': f'{type(e).__name__}: {str(e)[:300]}'}
            print(f'{name} {ph}: {res[ph]}', file=sys.stderr, flush=True)
            out[name] = res
            _save(out, args.out)
        out[name] = res
        del r, model
        if dev.type == 'cuda':
            torch.cuda.empty_cache()
    print(json.dumps(out))
    _save(out, args.out)
    return 0


def _save(out: dict, path: str):
    """Writes the results so far (atomically): a crash later keeps the finished phases."""
    if not path:
        return
    with open(path + '.tmp', 'w') as f:
        f.write(json.dumps(out) + '\n')
    os.replace(path + '.tmp', path)


if __name__ == '__main__':
    sys.exit(main())
