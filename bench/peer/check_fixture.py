#!/usr/bin/env python3
"""Prove that bench/peer/beit_upernet.py is the same model as mmseg's.

Loads the tiny_public segmentor state dict (mmseg key names, strict load) into the
'tiny' preset and compares every stage against tensors.safetensors:
backbone.out.*, neck.out.*, decode_head.logits, aux_head.logits, seg.logits_whole,
whole_nonsquare.logits, slide.logits / slide.count, loss.*, grad.* (eval mode),
adamw.after.* (one AdamW step with mmseg layer decay) and the final_norm variant.

The safetensors format is parsed here by hand (8-byte little-endian header length,
JSON header, raw little-endian bytes) - no safetensors package needed.

Usage: /usr/bin/python3 bench/peer/check_fixture.py [--fixture DIR] [--tol 1e-4]
Exit status 0 when every checked difference is <= tol.
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from beit_upernet import BEiTUperNet, build_adamw, make_config  # noqa: E402

_DTYPES = {
    'F64': torch.float64, 'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16,
    'I64': torch.int64, 'I32': torch.int32, 'I16': torch.int16, 'I8': torch.int8,
    'U8': torch.uint8, 'BOOL': torch.bool,
}


def load_safetensors(path: str) -> dict:
    with open(path, 'rb') as f:
        raw = bytearray(f.read())
    (hlen,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + hlen].decode('utf-8'))
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        dt = _DTYPES[info['dtype']]
        start, end = info['data_offsets']
        shape = info['shape']
        if end == start:
            out[name] = torch.empty(shape, dtype=dt)
            continue
        buf = memoryview(raw)[base + start:base + end]
        t = torch.frombuffer(buf, dtype=dt)
        out[name] = t.reshape(shape).clone()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--fixture', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'test', 'fixtures', 'tiny_public'))
    ap.add_argument('--tol', type=float, default=1e-4)
    args = ap.parse_args()
    torch.set_num_threads(1)

    manifest = json.load(open(os.path.join(args.fixture, 'manifest.json')))
    fcfg = manifest['config']
    sd = load_safetensors(os.path.join(args.fixture, 'segmentor_state_dict.safetensors'))
    ref = load_safetensors(os.path.join(args.fixture, 'tensors.safetensors'))

    # config from the preset, cross-checked against the fixture's own config
    cfg = make_config('tiny')
    for k, v in fcfg.items():
        if k in cfg:
            mine = cfg[k]
            same = (list(mine) == list(v)) if isinstance(mine, (list, tuple)) else mine == v
            if not same:
                print(f'config mismatch {k}: preset {mine!r} fixture {v!r}')
                return 1

    model = BEiTUperNet(cfg)
    model.load_state_dict(sd, strict=True)  # mmseg key names, nothing missing or extra
    model.eval()

    results = []
    worst = 0.0

    def cmp(name, got, want=None, tol=None):
        nonlocal worst
        want = ref[name] if want is None else want
        got = got.detach().to(torch.float64).reshape(want.shape)
        d = (got - want.to(torch.float64)).abs().max().item()
        t = args.tol if tol is None else tol
        ok = d <= t
        worst = max(worst, d) if tol is None else worst
        results.append((name, d, ok, t))
        print(f'{"ok  " if ok else "FAIL"} {name:58s} max|diff| = {d:.3e}  (tol {t:g})')

    with torch.no_grad():
        img = ref['input.image']
        feats = model.backbone(img)
        for i, f in enumerate(feats):
            cmp(f'backbone.out.{i}', f)
        neck = model.neck(feats)
        for i, f in enumerate(neck):
            cmp(f'neck.out.{i}', f)
        cmp('decode_head.logits', model.decode_head(neck))
        cmp('aux_head.logits', model.auxiliary_head(neck))
        whole = model.whole_inference(img)
        cmp('seg.logits_whole', whole)
        pred = whole.argmax(1)[0].to(torch.uint8)
        results.append(('seg.pred_whole', float((pred != ref['seg.pred_whole']).sum()), True, 0))
        print(f'     seg.pred_whole mismatching pixels: {int((pred != ref["seg.pred_whole"]).sum())}')

        ns = model.whole_inference(ref['whole_nonsquare.image'])
        cmp('whole_nonsquare.logits', ns)

        wins = model.slide_windows(80, 112, cfg['crop_size'], cfg['stride'])
        want_wins = [tuple(w) for w in manifest['derived']['slide_windows_y1y2x1x2']]
        print(f'{"ok  " if wins == want_wins else "FAIL"} slide windows {wins}')
        if wins != want_wins:
            results.append(('slide.windows', 1.0, False, 0))
        sl, cnt = model.slide_inference(ref['slide.image'], return_count=True)
        cmp('slide.logits', sl)
        cmp('slide.count', cnt)
        spred = sl.argmax(1)[0].to(torch.uint8)
        print(f'     slide.pred mismatching pixels: {int((spred != ref["slide.pred"]).sum())}')

    # loss + grads: eval mode (BN running stats, no dropout), as the fixture
    label = ref['loss.label'].long().unsqueeze(0)
    model.zero_grad(set_to_none=True)
    losses = model.loss(img, label)
    cmp('loss.decode', losses['decode'])
    cmp('loss.aux', losses['aux'])
    cmp('loss.total', losses['total'])
    losses['total'].backward()
    params = dict(model.named_parameters())
    grad_names = [k for k in ref if k.startswith('grad.')]
    for k in grad_names:
        cmp(k, params[k[len('grad.'):]].grad)

    # one AdamW step with mmseg's layer-wise decay groups
    opt_cfg = manifest['optimizer']
    opt = build_adamw(model, lr=fcfg['lr'], weight_decay=fcfg['weight_decay'],
                      decay_rate=fcfg['layer_decay_rate'], betas=tuple(fcfg['betas']),
                      eps=fcfg['adam_eps'])
    # group membership must match the fixture's
    mine_groups = {g['group_name']: sorted(g['param_names']) for g in opt.param_groups}
    want_groups = {k: sorted(v['param_names']) for k, v in opt_cfg['all_groups'].items()}
    gok = mine_groups == want_groups
    print(f'{"ok  " if gok else "FAIL"} AdamW layer-decay groups ({len(mine_groups)} groups)')
    if not gok:
        results.append(('adamw.groups', 1.0, False, 0))
    opt.step()
    # elements with a tiny gradient may flip sign-driven steps (manifest grad_stats_note):
    # compare with tolerance 2*lr + tol.
    for k in [k for k in ref if k.startswith('adamw.after.')]:
        name = k[len('adamw.after.'):]
        cmp(k, params[name], tol=2 * fcfg['lr'] + args.tol)
        d = (params[name].detach().double() - ref[k].double()).abs()
        n_big = int((d > args.tol).sum())
        if n_big:
            print(f'     {n_big} of {d.numel()} elements beyond {args.tol:g} (sign-unstable step)')

    # final_norm variant: the same weights plus backbone.ln1
    if 'variant_final_norm.ln1.weight' in ref:
        vcfg = make_config('tiny', final_norm=True)
        vm = BEiTUperNet(vcfg)
        vsd = dict(sd)
        vsd['backbone.ln1.weight'] = ref['variant_final_norm.ln1.weight']
        vsd['backbone.ln1.bias'] = ref['variant_final_norm.ln1.bias']
        vm.load_state_dict(vsd, strict=True)
        vm.eval()
        with torch.no_grad():
            for i, f in enumerate(vm.backbone(img)):
                cmp(f'variant_final_norm.backbone.out.{i}', f)

    bad = [r for r in results if not r[2]]
    print(f'\nchecked {len(results)} items; worst max|diff| (tol {args.tol:g} items) = {worst:.3e}; '
          f'{"ALL OK" if not bad else str(len(bad)) + " FAILED"}')
    return 0 if not bad else 1


if __name__ == '__main__':
    sys.exit(main())
