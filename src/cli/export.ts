/** `beitseg export --format onnx`: the segmentor as an ONNX model that predicts without libtorch. */
import type { Command } from 'commander';
import { addCfgOptions, CONFIG_HELP, loadCliConfig } from './config_arg.js';
import { parsePositiveInt } from './options.js';

interface ExportOptions {
  format: string;
  config: string;
  weights?: string;
  out: string;
  opset: number;
  window?: boolean;
  dynamic?: boolean;
  fp16?: boolean;
  quantize?: string;
  cfgOptions?: string[];
}

export function register(program: Command): void {
  const cmd = program
    .command('export')
    .description('export the segmentor (backbone, neck, decode head; no auxiliary head) as an ONNX model')
    .requiredOption('--format <format>', 'onnx (the only format)')
    .requiredOption('--config <file>', CONFIG_HELP)
    .option('--weights <file>', 'weights in any format predict reads (.pth, .safetensors, official, HF folder)')
    .requiredOption('--out <file>', 'output .onnx file (written atomically)')
    .option('--opset <n>', 'ONNX opset (17..21)', parsePositiveInt, 17)
    .option('--window', 'a graph for the slide window only (default when test_cfg.mode is slide)')
    .option('--dynamic', 'a graph for any input size (default in whole mode)')
    .option('--fp16', 'float16 weights and compute (input and output stay float32)')
    .option('--quantize <type>', 'int8: int8 weights, dynamically quantized MatMuls');
  addCfgOptions(cmd).action(async (opts: ExportOptions) => {
    if (opts.format !== 'onnx') throw new Error(`--format ${opts.format} is not supported (supported: onnx)`);
    if (opts.window && opts.dynamic) throw new Error('--window and --dynamic exclude each other');
    if (opts.quantize !== undefined && opts.quantize !== 'int8') {
      throw new Error(`--quantize ${opts.quantize} is not supported (supported: int8)`);
    }
    if (!opts.weights) process.stderr.write('warning: no --weights given: the model has random weights\n');
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
