"""Plain-PyTorch peer of mmsegmentation's BEiT + Feature2Pyramid + UPerHead + FCNHead.

Written from the specification in the project's mmseg BEiT notes (sections 1.1-1.9):
same math as mmseg 1.x and the same state-dict key names, so an mmseg segmentor
checkpoint (``state_dict``) loads with ``load_state_dict(strict=True)``.

Only depends on torch (works with Debian's python3-torch 1.13 and with PyTorch 2.x).

Presets:
  base  - configs/_base_/models/upernet_beit.py (BEiT-B, 640x640, 150 classes)
  large - BEiT-L overrides (1024 dims, 24 layers, 16 heads, decode channels 1024)
  tiny  - test/fixtures/tiny_public/manifest.json "config"

Typical use:
  from beit_upernet import build_segmentor
  model = build_segmentor('base', img_size=640)
  logits = model.slide_inference(img)          # (B, 150, H, W), raw averaged logits
  losses = model.loss(img, label)              # dict(decode, aux, total)
"""
from __future__ import annotations

import copy
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------

_BASE = dict(
    img_size=640,
    patch_size=16,
    in_channels=3,
    embed_dims=768,
    num_layers=12,
    num_heads=12,
    mlp_ratio=4,
    out_indices=(3, 5, 7, 11),
    qv_bias=True,
    attn_drop_rate=0.0,
    drop_path_rate=0.1,
    ln_eps=1e-6,
    init_values=0.1,
    final_norm=False,
    neck_rescales=(4, 2, 1, 0.5),
    bn_eps=1e-5,
    decode_in_index=(0, 1, 2, 3),
    pool_scales=(1, 2, 3, 6),
    decode_channels=768,
    num_classes=150,
    dropout_ratio=0.1,
    align_corners=False,
    decode_loss_weight=1.0,
    aux_in_index=2,
    aux_channels=256,
    aux_num_convs=1,
    aux_concat_input=False,
    aux_kernel_size=3,
    aux_loss_weight=0.4,
    ignore_index=255,
    avg_non_ignore=False,
    crop_size=(640, 640),
    stride=(426, 426),
    mean=(123.675, 116.28, 103.53),
    std=(58.395, 57.12, 57.375),
)

PRESETS: Dict[str, dict] = {
    'base': dict(_BASE),
    'large': dict(
        _BASE,
        embed_dims=1024,
        num_layers=24,
        num_heads=16,
        out_indices=(7, 11, 15, 23),
        init_values=1e-6,
        drop_path_rate=0.2,
        decode_channels=1024,
    ),
    'tiny': dict(
        _BASE,
        img_size=64,
        embed_dims=32,
        num_layers=4,
        num_heads=4,
        out_indices=(0, 1, 2, 3),
        decode_channels=32,
        num_classes=5,
        aux_channels=16,
        crop_size=(64, 64),
        stride=(43, 43),
    ),
}


def make_config(preset: str = 'base', **overrides) -> dict:
    """Return a config dict for a preset; ``img_size=S`` also sets crop_size to (S, S)."""
    if preset not in PRESETS:
        raise KeyError(f'unknown preset {preset!r}; choose from {sorted(PRESETS)}')
    cfg = copy.deepcopy(PRESETS[preset])
    if 'img_size' in overrides and 'crop_size' not in overrides:
        s = overrides['img_size']
        overrides['crop_size'] = (s, s) if isinstance(s, int) else tuple(s)
    cfg.update(overrides)
    return cfg


def _pair(v) -> Tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def resize(x: torch.Tensor, size, align_corners: bool = False) -> torch.Tensor:
    """mmseg ``resize``: bilinear F.interpolate to an explicit output size."""
    size = tuple(int(s) for s in size)
    return F.interpolate(x, size=size, mode='bilinear', align_corners=align_corners)


# ---------------------------------------------------------------------------
# backbone
# ---------------------------------------------------------------------------

class DropPath(nn.Module):
    """Per-sample stochastic depth (mmcv drop_path): x / keep * floor(keep + U[0,1))."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = torch.rand(shape, dtype=x.dtype, device=x.device).add_(keep).floor_()
        return x.div(keep) * mask

    def extra_repr(self) -> str:
        return f'p={self.p}'


class PatchEmbed(nn.Module):
    """Conv2d k=s=patch, padding 0, no norm. Key: patch_embed.projection."""

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int):
        super().__init__()
        self.projection = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size, padding=0)

    def forward(self, x: torch.Tensor):
        x = self.projection(x)
        hw = (x.shape[2], x.shape[3])
        return x.flatten(2).transpose(1, 2), hw


def relative_position_index(wh: int, ww: int) -> torch.Tensor:
    """(N+1, N+1) int64 index into the (2wh-1)(2ww-1)+3 table (notes 1.2 item 5)."""
    n_rel = (2 * wh - 1) * (2 * ww - 1) + 3
    hh, wwg = torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing='ij')
    hh = hh.reshape(-1)
    wwg = wwg.reshape(-1)
    dh = hh[:, None] - hh[None, :] + (wh - 1)
    dw = wwg[:, None] - wwg[None, :] + (ww - 1)
    n = wh * ww
    idx = torch.zeros((n + 1, n + 1), dtype=torch.long)
    idx[1:, 1:] = dh * (2 * ww - 1) + dw
    idx[0, :] = n_rel - 3
    idx[:, 0] = n_rel - 2
    idx[0, 0] = n_rel - 1
    return idx


class BEiTAttention(nn.Module):
    def __init__(self, embed_dims: int, num_heads: int, window_size: Tuple[int, int],
                 qv_bias: bool = True, attn_drop_rate: float = 0.0):
        super().__init__()
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dim = embed_dims // num_heads
        self.scale = self.head_dim ** -0.5
        self.window_size = window_size
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=False)
        if qv_bias:
            self.q_bias = nn.Parameter(torch.zeros(embed_dims))
            self.v_bias = nn.Parameter(torch.zeros(embed_dims))
        else:
            self.q_bias = None
            self.v_bias = None
        wh, ww = window_size
        n_rel = (2 * wh - 1) * (2 * ww - 1) + 3
        self.relative_position_bias_table = nn.Parameter(torch.zeros(n_rel, num_heads))
        self.register_buffer('relative_position_index', relative_position_index(wh, ww))
        self.attn_drop = nn.Dropout(attn_drop_rate)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(0.0)

    def rel_pos_bias(self) -> torch.Tensor:
        """(heads, N, N) bias gathered from the table (rebuilt on each call, as mmseg does)."""
        n = self.relative_position_index.shape[0]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, self.num_heads).permute(2, 0, 1).contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        if self.q_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        else:
            bias = None
        if isinstance(self.qkv, nn.Linear):
            qkv = F.linear(x, self.qkv.weight, bias)
        else:  # a quantized copy (quantize_dynamic) has no float weight: its output plus the bias
            qkv = self.qkv(x) if bias is None else self.qkv(x) + bias
        qkv = qkv.reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q = q * self.scale
        attn = q @ k.transpose(-2, -1)
        attn = attn + self.rel_pos_bias().unsqueeze(0)
        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)
        out = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(out))


class FFN(nn.Module):
    """mmcv FFN(num_fcs=2): keys ffn.layers.0.0 (fc1) and ffn.layers.1 (fc2)."""

    def __init__(self, embed_dims: int, hidden: int, drop: float = 0.0):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(embed_dims, hidden), nn.GELU(), nn.Dropout(drop)),
            nn.Linear(hidden, embed_dims),
            nn.Dropout(drop),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class BEiTLayer(nn.Module):
    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float, window_size,
                 qv_bias: bool, attn_drop_rate: float, drop_path: float, init_values: float,
                 ln_eps: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(embed_dims, eps=ln_eps)
        self.attn = BEiTAttention(embed_dims, num_heads, window_size, qv_bias, attn_drop_rate)
        self.ln2 = nn.LayerNorm(embed_dims, eps=ln_eps)
        self.ffn = FFN(embed_dims, int(embed_dims * mlp_ratio))
        self.drop_path = DropPath(drop_path)
        self.gamma_1 = nn.Parameter(init_values * torch.ones(embed_dims))
        self.gamma_2 = nn.Parameter(init_values * torch.ones(embed_dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.gamma_1 * self.attn(self.ln1(x)))
        x = x + self.drop_path(self.gamma_2 * self.ffn(self.ln2(x)))
        return x


class BEiT(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        img = _pair(cfg['img_size'])
        p = cfg['patch_size']
        self.window_size = (img[0] // p, img[1] // p)
        c = cfg['embed_dims']
        self.out_indices = tuple(cfg['out_indices'])
        self.final_norm = bool(cfg.get('final_norm', False))
        self.patch_embed = PatchEmbed(cfg['in_channels'], c, p)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c))
        n = cfg['num_layers']
        dpr = torch.linspace(0, cfg['drop_path_rate'], n).tolist() if n > 1 else [0.0]
        self.layers = nn.ModuleList([
            BEiTLayer(c, cfg['num_heads'], cfg['mlp_ratio'], self.window_size, cfg['qv_bias'],
                      cfg['attn_drop_rate'], dpr[i], cfg['init_values'], cfg['ln_eps'])
            for i in range(n)
        ])
        if self.final_norm:
            self.ln1 = nn.LayerNorm(c, eps=cfg['ln_eps'])

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        b = x.shape[0]
        x, (h, w) = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(b, -1, -1), x), dim=1)
        outs = []
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i == last and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                o = x[:, 1:].reshape(b, h, w, -1).permute(0, 3, 1, 2).contiguous()
                outs.append(o)
        return outs


# ---------------------------------------------------------------------------
# neck + heads
# ---------------------------------------------------------------------------

class Feature2Pyramid(nn.Module):
    def __init__(self, embed_dim: int, rescales=(4, 2, 1, 0.5), bn_eps: float = 1e-5):
        super().__init__()
        self.rescales = tuple(rescales)
        self.upsample_4x = None
        self.upsample_2x = None
        ops = []
        for k in self.rescales:
            if k == 4:
                self.upsample_4x = nn.Sequential(
                    nn.ConvTranspose2d(embed_dim, embed_dim, 2, 2),
                    nn.BatchNorm2d(embed_dim, eps=bn_eps),
                    nn.GELU(),
                    nn.ConvTranspose2d(embed_dim, embed_dim, 2, 2),
                )
                ops.append('upsample_4x')
            elif k == 2:
                self.upsample_2x = nn.Sequential(nn.ConvTranspose2d(embed_dim, embed_dim, 2, 2))
                ops.append('upsample_2x')
            elif k == 1:
                ops.append('identity')
            elif k == 0.5:
                ops.append('down2')
            elif k == 0.25:
                ops.append('down4')
            else:
                raise KeyError(f'invalid rescale {k}')
        self._ops = ops

    def forward(self, inputs: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        assert len(inputs) == len(self._ops)
        outs = []
        for x, op in zip(inputs, self._ops):
            if op == 'upsample_4x':
                outs.append(self.upsample_4x(x))
            elif op == 'upsample_2x':
                outs.append(self.upsample_2x(x))
            elif op == 'identity':
                outs.append(x)
            elif op == 'down2':
                outs.append(F.max_pool2d(x, 2, 2))
            else:
                outs.append(F.max_pool2d(x, 4, 4))
        return outs


class ConvModule(nn.Module):
    """Conv2d(bias=False) -> BatchNorm2d -> ReLU. Keys <name>.conv.weight, <name>.bn.*"""

    def __init__(self, cin: int, cout: int, k: int, padding: int = 0, bn_eps: float = 1e-5):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=bn_eps)
        self.activate = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.bn(self.conv(x)))


class UPerHead(nn.Module):
    def __init__(self, in_channels: Sequence[int], channels: int, num_classes: int,
                 pool_scales=(1, 2, 3, 6), in_index=(0, 1, 2, 3), dropout_ratio: float = 0.1,
                 align_corners: bool = False, bn_eps: float = 1e-5):
        super().__init__()
        self.in_index = tuple(in_index)
        self.align_corners = align_corners
        top = in_channels[-1]
        self.psp_modules = nn.ModuleList([
            nn.Sequential(nn.AdaptiveAvgPool2d(s), ConvModule(top, channels, 1, bn_eps=bn_eps))
            for s in pool_scales
        ])
        self.bottleneck = ConvModule(top + len(pool_scales) * channels, channels, 3, 1, bn_eps)
        self.lateral_convs = nn.ModuleList(
            [ConvModule(c, channels, 1, bn_eps=bn_eps) for c in in_channels[:-1]])
        self.fpn_convs = nn.ModuleList(
            [ConvModule(channels, channels, 3, 1, bn_eps) for _ in in_channels[:-1]])
        self.fpn_bottleneck = ConvModule(len(in_channels) * channels, channels, 3, 1, bn_eps)
        self.dropout = nn.Dropout2d(dropout_ratio) if dropout_ratio > 0 else None
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def psp_forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [x]
        for m in self.psp_modules:
            outs.append(resize(m(x), x.shape[2:], self.align_corners))
        return self.bottleneck(torch.cat(outs, dim=1))

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        inputs = [feats[i] for i in self.in_index]
        laterals = [conv(inputs[i]) for i, conv in enumerate(self.lateral_convs)]
        laterals.append(self.psp_forward(inputs[-1]))
        n = len(laterals)
        for i in range(n - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + resize(laterals[i], laterals[i - 1].shape[2:],
                                                       self.align_corners)
        outs = [self.fpn_convs[i](laterals[i]) for i in range(n - 1)]
        outs.append(laterals[-1])
        for i in range(n - 1, 0, -1):
            outs[i] = resize(outs[i], outs[0].shape[2:], self.align_corners)
        x = self.fpn_bottleneck(torch.cat(outs, dim=1))
        if self.dropout is not None:
            x = self.dropout(x)
        return self.conv_seg(x)


class FCNHead(nn.Module):
    def __init__(self, in_channels: int, channels: int, num_classes: int, in_index: int = 2,
                 num_convs: int = 1, kernel_size: int = 3, concat_input: bool = False,
                 dropout_ratio: float = 0.1, bn_eps: float = 1e-5):
        super().__init__()
        self.in_index = in_index
        pad = kernel_size // 2
        convs = [ConvModule(in_channels, channels, kernel_size, pad, bn_eps)]
        for _ in range(num_convs - 1):
            convs.append(ConvModule(channels, channels, kernel_size, pad, bn_eps))
        self.convs = nn.Sequential(*convs) if num_convs > 0 else nn.Identity()
        self.concat_input = concat_input
        if concat_input:
            self.conv_cat = ConvModule(in_channels + channels, channels, kernel_size, pad, bn_eps)
        self.dropout = nn.Dropout2d(dropout_ratio) if dropout_ratio > 0 else None
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        x = feats[self.in_index]
        y = self.convs(x)
        if self.concat_input:
            y = self.conv_cat(torch.cat([x, y], dim=1))
        if self.dropout is not None:
            y = self.dropout(y)
        return self.conv_seg(y)


# ---------------------------------------------------------------------------
# segmentor
# ---------------------------------------------------------------------------

def seg_cross_entropy(logits: torch.Tensor, label: torch.Tensor, ignore_index: int = 255,
                      avg_non_ignore: bool = False) -> torch.Tensor:
    """mmseg CrossEntropyLoss: per-pixel CE (0 at ignored pixels), mean over ALL pixels
    when avg_non_ignore is False (default), else over non-ignored pixels."""
    per_pixel = F.cross_entropy(logits.float(), label, reduction='none', ignore_index=ignore_index)
    if avg_non_ignore:
        denom = (label != ignore_index).sum().clamp_min(1)
        return per_pixel.sum() / denom
    return per_pixel.mean()


class BEiTUperNet(nn.Module):
    """EncoderDecoder(backbone=BEiT, neck=Feature2Pyramid, decode_head=UPerHead,
    auxiliary_head=FCNHead)."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = dict(cfg)
        c = cfg['embed_dims']
        self.backbone = BEiT(cfg)
        self.neck = Feature2Pyramid(c, cfg['neck_rescales'], cfg['bn_eps'])
        n_in = len(cfg['decode_in_index'])
        self.decode_head = UPerHead([c] * n_in, cfg['decode_channels'], cfg['num_classes'],
                                    cfg['pool_scales'], cfg['decode_in_index'],
                                    cfg['dropout_ratio'], cfg['align_corners'], cfg['bn_eps'])
        self.auxiliary_head = FCNHead(c, cfg['aux_channels'], cfg['num_classes'],
                                      cfg['aux_in_index'], cfg['aux_num_convs'],
                                      cfg['aux_kernel_size'], cfg['aux_concat_input'],
                                      cfg['dropout_ratio'], cfg['bn_eps'])
        self.align_corners = cfg['align_corners']

    # -- feature path ---------------------------------------------------
    def extract_feat(self, img: torch.Tensor) -> List[torch.Tensor]:
        return self.neck(self.backbone(img))

    def encode_decode(self, img: torch.Tensor) -> torch.Tensor:
        """Decode logits bilinearly resized to the input size (mmseg encode_decode)."""
        logits = self.decode_head(self.extract_feat(img))
        return resize(logits, img.shape[2:], self.align_corners)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.encode_decode(img)

    # -- inference ------------------------------------------------------
    def whole_inference(self, img: torch.Tensor) -> torch.Tensor:
        return self.encode_decode(img)

    @staticmethod
    def slide_windows(h: int, w: int, crop, stride) -> List[Tuple[int, int, int, int]]:
        """mmseg slide windows as (y1, y2, x1, x2), row-major."""
        ch, cw = _pair(crop)
        sh, sw = _pair(stride)
        gh = max(h - ch + sh - 1, 0) // sh + 1
        gw = max(w - cw + sw - 1, 0) // sw + 1
        wins = []
        for hi in range(gh):
            for wi in range(gw):
                y1 = hi * sh
                x1 = wi * sw
                y2 = min(y1 + ch, h)
                x2 = min(x1 + cw, w)
                y1 = max(y2 - ch, 0)
                x1 = max(x2 - cw, 0)
                wins.append((y1, y2, x1, x2))
        return wins

    def slide_inference(self, img: torch.Tensor, crop_size=None, stride=None,
                        return_count: bool = False):
        crop_size = _pair(crop_size or self.cfg['crop_size'])
        stride = _pair(stride or self.cfg['stride'])
        b, _, h, w = img.shape
        nc = self.cfg['num_classes']
        preds = img.new_zeros((b, nc, h, w), dtype=torch.float32)
        count = img.new_zeros((b, 1, h, w), dtype=torch.float32)
        for y1, y2, x1, x2 in self.slide_windows(h, w, crop_size, stride):
            crop = img[:, :, y1:y2, x1:x2]
            logit = self.encode_decode(crop).float()
            preds += F.pad(logit, (x1, w - x2, y1, h - y2))
            count[:, :, y1:y2, x1:x2] += 1
        assert (count == 0).sum() == 0
        out = preds / count
        return (out, count) if return_count else out

    def predict(self, img: torch.Tensor, mode: str = 'slide', ori_shape=None) -> torch.Tensor:
        """Logits -> (optional resize to ori_shape) -> argmax class map (B, H, W)."""
        logits = self.slide_inference(img) if mode == 'slide' else self.whole_inference(img)
        if ori_shape is not None:
            logits = resize(logits, ori_shape, self.align_corners)
        return logits.argmax(dim=1)

    # -- training -------------------------------------------------------
    def loss(self, img: torch.Tensor, label: torch.Tensor) -> Dict[str, torch.Tensor]:
        """label: (B, H, W) or (B, 1, H, W) integer, 255 = ignore. Runs in whatever mode the
        module is in (train(): DropPath, Dropout2d and batch-statistics BN active)."""
        if label.ndim == 4:
            label = label[:, 0]
        label = label.long()
        feats = self.extract_feat(img)
        dec = resize(self.decode_head(feats), label.shape[1:], self.align_corners)
        aux = resize(self.auxiliary_head(feats), label.shape[1:], self.align_corners)
        ii, ani = self.cfg['ignore_index'], self.cfg['avg_non_ignore']
        l_dec = self.cfg['decode_loss_weight'] * seg_cross_entropy(dec, label, ii, ani)
        l_aux = self.cfg['aux_loss_weight'] * seg_cross_entropy(aux, label, ii, ani)
        return {'decode': l_dec, 'aux': l_aux, 'total': l_dec + l_aux}

    # -- init -----------------------------------------------------------
    @torch.no_grad()
    def init_weights(self, seed: Optional[int] = None):
        """Random init in the spirit of mmseg (no pretrained weights): trunc_normal(.02)
        Linear / tables / cls_token, kaiming conv, BN (1, 0), conv_seg N(0, .01)."""
        if seed is not None:
            torch.manual_seed(seed)
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d) and not name.endswith('conv_seg'):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, BEiTAttention):
                nn.init.trunc_normal_(m.relative_position_bias_table, std=0.02)
        nn.init.trunc_normal_(self.backbone.cls_token, std=0.02)
        for head in (self.decode_head, self.auxiliary_head):
            nn.init.normal_(head.conv_seg.weight, std=0.01)
            nn.init.zeros_(head.conv_seg.bias)
        return self


def build_segmentor(preset: str = 'base', seed: Optional[int] = 0, **overrides) -> BEiTUperNet:
    cfg = make_config(preset, **overrides)
    model = BEiTUperNet(cfg)
    if seed is not None:
        model.init_weights(seed)
    return model


# ---------------------------------------------------------------------------
# optimizer: AdamW with mmseg LayerDecayOptimizerConstructor (notes 1.11)
# ---------------------------------------------------------------------------

def _layer_id(name: str, num_layers: int) -> int:
    if name.startswith(('backbone.cls_token', 'backbone.mask_token', 'backbone.pos_embed',
                        'backbone.patch_embed')):
        return 0
    if name.startswith('backbone.layers.'):
        return int(name.split('.')[2]) + 1
    return num_layers + 1


def layer_decay_param_groups(model: nn.Module, lr: float, weight_decay: float,
                             num_layers: int, decay_rate: float) -> List[dict]:
    """Param groups of mmseg's LayerDecayOptimizerConstructor (layer_wise_vit)."""
    eff = num_layers + 2
    groups: Dict[str, dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim == 1 or name.endswith('.bias') or name in ('pos_embed', 'cls_token'):
            gname, wd = 'no_decay', 0.0
        else:
            gname, wd = 'decay', weight_decay
        lid = _layer_id(name, num_layers)
        key = f'layer_{lid}_{gname}'
        if key not in groups:
            scale = decay_rate ** (eff - lid - 1)
            groups[key] = dict(params=[], param_names=[], lr=scale * lr, lr_scale=scale,
                               weight_decay=wd, group_name=key)
        groups[key]['params'].append(p)
        groups[key]['param_names'].append(name)
    return list(groups.values())


def build_adamw(model: BEiTUperNet, lr: float = 3e-5, weight_decay: float = 0.05,
                decay_rate: Optional[float] = None, betas=(0.9, 0.999), eps: float = 1e-8):
    """AdamW with layer-wise LR decay (base 0.9, large 0.95 if decay_rate is None)."""
    n = model.cfg['num_layers']
    if decay_rate is None:
        decay_rate = 0.95 if n >= 24 else 0.9
    groups = layer_decay_param_groups(model, lr, weight_decay, n, decay_rate)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def count_parameters(model: nn.Module) -> Dict[str, int]:
    out = {}
    for part in ('backbone', 'neck', 'decode_head', 'auxiliary_head'):
        out[part] = sum(p.numel() for p in getattr(model, part).parameters())
    out['total'] = sum(out.values())
    return out


if __name__ == '__main__':
    import sys
    preset = sys.argv[1] if len(sys.argv) > 1 else 'tiny'
    m = build_segmentor(preset)
    print(preset, count_parameters(m))
