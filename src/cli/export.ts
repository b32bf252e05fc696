/** `beitseg export --format onnx`: the segmentor as an ONNX model that predicts without libtorch. */
import { type Command, Option } from 'commander';
import { defineCommand } from './commands.js';
import { checkOutFile } from './outputs.js';
import { addOptions, parsePositiveInt, requireWeights, sharedOption } from './options.js';

interface ExportOptions {
  format: string;
  config: string;
  weights?: string;
  randomWeights?: boolean;
  out: string;
  opset: number;
  window?: boolean;
  dynamic?: boolean;
  fp16?: boolean;
  quantize?: string;
  cfgOptions?: string[];
}

export function register(program: Command): void {
  const cmd = defineCommand(program, 'export')
    .addOption(new Option('--format <format>', 'the output format').choices(['onnx']).makeOptionMandatory())
    .addOption(sharedOption('config'))
    .addOption(
      sharedOption('weights', {
        help: 'weights in any format predict reads (.pth, .safetensors, official, HF folder)',
      }),
    )
    .addOption(sharedOption('randomWeights'))
    .requiredOption('--out <file>', 'output .onnx file (written atomically)')
    .option('--opset <n>', 'ONNX opset (17..21)', parsePositiveInt, 17)
    .option('--fp16', 'float16 weights and compute (input and output stay float32)')
    .addOption(new Option('--quantize <type>', 'int8: int8 weights, dynamically quantized MatMuls').choices(['int8']))
    .addOption(new Option('--window', 'a graph for the slide window only (default when test_cfg.mode is slide)'))
    .addOption(new Option('--dynamic', 'a graph for any input size (default in whole mode)').conflicts('window'));
  addOptions(cmd, ['cfgOptions', 'mmsegConfigs']).action(async (opts: ExportOptions) => {
    requireWeights(opts);
    checkOutFile(opts.out, '--out');
    if (!opts.weights) process.stderr.write('warning: --random-weights: the model has random weights\n');
    const { loadCliConfig } = await import('./config_arg.js');
    const cfg = loadCliConfig(opts.config, opts.cfgOptions);
    const { exportOnnxFile } = await import('../export/onnx/write.js');
    const s = await exportOnnxFile(cfg, opts.weights ?? null, opts.out, {
      opset: opts.opset,
      shape: opts.window ? 'window' : opts.dynamic ? 'dynamic' : undefined,
      fp16: opts.fp16,
      quantize: opts.quantize as 'int8' | undefined,
      verbose: true,
    });
    const shape = s.meta.window ? `window ${s.meta.window.join('x')}` : 'any input size';
    process.stderr.write(
      `wrote ${s.out}: ${(s.bytes / 1e6).toFixed(1)} MB, opset ${s.meta.opset}, ${s.meta.precision}, ${shape}, ` +
        `${s.meta.numClasses} classes (${s.seconds.toFixed(1)} s)\n`,
    );
  });
}
