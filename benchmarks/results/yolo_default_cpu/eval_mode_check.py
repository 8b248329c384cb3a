"""Loss of the run's last.pt on 16 cluster tiles and 16 background tiles of the first 60
validation images, with BatchNorm in eval mode (running statistics) and in train mode (batch
statistics). A large gap means the running statistics do not match the weights."""
import json, sys, torch, numpy as np
torch.set_num_threads(1)
from calcsdk.training.datasets import load_coco
from calcsdk.training.yolo.config import YoloTrainConfig
from calcsdk.training.yolo.data import YoloTileDataset, collate_samples
from calcsdk.training.yolo.command import split_records
from calcsdk.training.yolo.train import build_model
from calcsdk.training.yolo.loss import YoloLoss
run = sys.argv[1] if len(sys.argv) > 1 else 'run-yolov4-1'
AUGMENT = len(sys.argv) > 2 and sys.argv[2] == 'augment'
ck = torch.load(f'{run}/last.pt', mmap=True, weights_only=True, map_location='cpu')
cfg = YoloTrainConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in ck['config'].items()})
recs = load_coco('/work/runs/synth_default/annotations.json')
parts = split_records(recs, json.load(open(f'{run}/split.json')))
ds = YoloTileDataset(parts['val'][:60], cfg, train=False, cache_dir='yolo_cache')
pos = np.flatnonzero(ds.positive)[:16]; neg = np.flatnonzero(~ds.positive)[:16]
crit = YoloLoss(torch.tensor(ck['anchors']), 2, scale_x_y=cfg.scale_x_y, iou_t=cfg.iou_t,
                ignore_thresh=cfg.ignore_thresh, iou_normalizer=cfg.iou_normalizer,
                obj_normalizer=cfg.obj_normalizer, cls_normalizer=cfg.cls_normalizer)
def loss_of(model, idx):
    images, targets = collate_samples([ds[i] for i in idx])
    with torch.no_grad():
        out = [o.float() for o in model(images)]
        loss, parts = crit(out, targets, normalizer=len(idx))
    return round(float(loss), 2), {k: round(float(v), 2) for k, v in parts.items()}
m = build_model(cfg); m.load_state_dict(ck['model'])
print('step', ck['state']['global_step'])
m.eval(); print(' eval mode: cluster tiles', loss_of(m, pos), 'background', loss_of(m, neg))
m.train(); print(' train mode: cluster tiles', loss_of(m, pos), 'background', loss_of(m, neg))
# Re-estimate the running statistics as a cumulative average over 6 micro-batches of 8 training
# tiles (cluster and background mixed as in training), then evaluate again in eval mode.
tr = YoloTileDataset(parts['train'][:60], cfg, train=AUGMENT, cache_dir='yolo_cache')
rng = np.random.default_rng(0)
mix = rng.permutation(np.concatenate([np.flatnonzero(tr.positive)[:24], np.flatnonzero(~tr.positive)[:24]]))
for module in m.modules():
    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
        module.reset_running_stats(); module.momentum = None
m.train()
with torch.no_grad():
    for k in range(0, len(mix), 8):
        m(collate_samples([tr[i] for i in mix[k:k + 8]])[0])
m.eval(); print(f' eval mode, statistics re-estimated (augment={AUGMENT}): cluster tiles', loss_of(m, pos), 'background', loss_of(m, neg))
