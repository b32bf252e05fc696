/** Help text of --config and --cfg-options (kept apart from the loaders, so --help loads no config code). */
export const CFG_OPTIONS_HELP =
  'override config values, mmengine style: key=value ... ' +
  '(e.g. model.decode_head.num_classes=19 train_dataloader.dataset.pipeline.3.crop_size=[512,512]; ' +
  'numbers, strings, true/false, None, [a,b], (a,b)); end the list with -- before positional arguments';

export const CONFIG_HELP =
  'config: an mmseg 1.x .py config (with _base_ files) or its JSON dump, ' + 'e.g. configs/tiny_synthetic.json';
