"""Writes an mmengine work dir (iter_N.pth + last_checkpoint) from a beitseg training checkpoint, the
way mmengine's Runner.save_checkpoint lays one out for an mmseg training: meta, state_dict (in the
model's order), message_hub, the optimizer's torch state_dict and param_schedulers. The optimizer
is a real torch.optim.AdamW built over the groups mmseg's constructor makes (with its group_name and
param_names when the layout says so), its state set from the beitseg moments, so the file holds
exactly what torch writes. Used by test/engine/mmengine_resume.test.ts with Debian's python3-torch:

    /usr/bin/python3 make_mmengine_workdir.py BEITSEG_CKPT_DIR LAYOUT.json WORK_DIR
"""
import collections
import json
import os
import struct
import sys

import numpy as np
import torch

DTYPES = {'F32': np.float32, 'F16': np.float16, 'I64': np.int64, 'I32': np.int32, 'U8': np.uint8}


def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for key, v in header.items():
        if key == '__metadata__':
            continue
        a, b = v['data_offsets']
        array = np.frombuffer(data[a:b], dtype=DTYPES[v['dtype']]).reshape(v['shape']).copy()
        out[key] = torch.from_numpy(array)
    return out


def main(ckpt_dir, layout_file, work_dir):
    layout = json.load(open(layout_file))
    state = json.load(open(os.path.join(ckpt_dir, 'state.json')))
    weights = read_safetensors(os.path.join(ckpt_dir, 'model.safetensors'))
    moments = read_safetensors(os.path.join(ckpt_dir, 'state.safetensors'))
    params = {name: weights[name].clone() for g in layout['groups'] for name in g['paramNames']}
    saved = {g['name']: g for g in state['optimizer']['groups']}
    param_groups = []
    for g in layout['groups']:
        m = saved[g['name']]
        group = {'params': [params[n] for n in g['paramNames']], 'lr': m['lr'], 'initial_lr': m['initialLr'],
                 'weight_decay': m['weightDecay']}
        if layout['named']:
            group.update(param_names=list(g['paramNames']), group_name=g['name'], lr_scale=g['lrScale'])
        param_groups.append(group)
    opt = torch.optim.AdamW(param_groups, betas=tuple(state['optimizer']['betas']), eps=state['optimizer']['eps'])
    steps = state['optimizer']['steps']
    for name, p in params.items():
        if name in steps:
            opt.state[p] = {'step': torch.tensor(float(steps[name])), 'exp_avg': moments[name + '.exp_avg'],
                            'exp_avg_sq': moments[name + '.exp_avg_sq']}
    optimizer = opt.state_dict()
    if state.get('scaler'):
        optimizer['loss_scaler'] = {'scale': float(state['scaler']['scale']), 'growth_factor': 2.0,
                                    'backoff_factor': 0.5, 'growth_interval': 2000,
                                    '_growth_tracker': int(state['scaler']['growthTracker'])}
    iteration = state['iteration']
    runtime_info = [('epoch', 0), ('iter', iteration), ('max_iters', state['maxIters'])]
    if state.get('best'):
        # mmengine's CheckpointHook: the score as mmseg's IoUMetric gives it (a numpy float) and the file
        best = state['best']
        runtime_info += [('best_score', np.float64(best['value'])),
                         ('best_ckpt', os.path.join(work_dir, 'best_%s_iter_%d.pth' % (best['metric'], best['iteration'])))]
    checkpoint = {
        'meta': {'cfg': '', 'seed': state['seed'], 'experiment_name': 'converted', 'time': '20261207_000000',
                 'mmengine_version': '0.10.4', 'epoch': 0, 'iter': iteration},
        'state_dict': collections.OrderedDict((k, weights[k]) for k in layout['stateOrder']),
        'message_hub': {'log_scalars': collections.OrderedDict(), 'runtime_info': collections.OrderedDict(runtime_info),
            'resumed_keys': collections.OrderedDict([('epoch', True), ('iter', True)])},
        'optimizer': optimizer,
        'param_schedulers': [{'param_name': 'lr', 'by_epoch': False, 'last_step': iteration,
                              '_global_step': iteration}],
    }
    os.makedirs(work_dir, exist_ok=True)
    target = os.path.join(work_dir, 'iter_%d.pth' % iteration)
    torch.save(checkpoint, target)
    with open(os.path.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(target)


if __name__ == '__main__':
    main(*sys.argv[1:4])
