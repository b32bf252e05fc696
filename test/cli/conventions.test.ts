/**
 * The command line's conventions (issue 30.1-5, docs/cli.md), in child processes: usage errors
 * exit 2 with one error line and one line pointing to --help; every error carries the one
 * prefix; enumerated options are validated on every command; predict needs --weights or
 * --random-weights; a wrong --out fails before the model loads; default outputs go to
 * work_dirs/<config>/<command>; --help, --version, print-config and usage errors load neither
 * the addon nor the model code; predict's JSON is the documented schema.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { readLabel } from '../../src/data/image_io.js';
import { repoRoot, tinyConfigPath } from '../helpers.js';

const cli = path.join(repoRoot, 'bin', 'beitseg.js');
const scene = path.join(repoRoot, 'test', 'fixtures', 'images', 'scene.png');
const weights = path.join(repoRoot, 'test', 'fixtures', 'tiny_public', 'segmentor_mmseg.pth');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function beitseg(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; node?: string[] } = {}): Promise<Run> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...(opts.node ?? []), cli, ...args],
      { cwd: opts.cwd, env: { ...process.env, ...opts.env }, maxBuffer: 1 << 24, timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? null) : 0;
        resolve({ code, stdout, stderr, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
      },
    );
  });
}

/** A usage error: exit 2, the error line(s) with the one prefix, then the --help pointer; no help text. */
function assertUsageError(r: Run, message: RegExp, help: string): void {
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.match(lines[0]!, /^beitseg: error: /);
  assert.match(r.stderr, message);
  assert.equal(lines.at(-1), `Run '${help} --help' for usage.`);
  assert.ok(lines.length <= 3, `short: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /Usage:|Options:/);
}

describe('beitseg command-line conventions', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beitseg-conventions-'));
  const noAddon = { BEITSEG_ADDON: path.join(dir, 'no-such-addon.node') };
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('usage errors exit 2 with the error, "did you mean" and one line pointing to --help', async () => {
    assertUsageError(await beitseg(['predcit']), /unknown command 'predcit'\n\(Did you mean predict\?\)/, 'beitseg');
    assertUsageError(
      await beitseg(['predict', '--config', tinyConfigPath, '--weigths', 'w', scene]),
      /unknown option '--weigths'\n\(Did you mean --weights\?\)/,
      'beitseg predict',
    );
    assertUsageError(
      await beitseg(['predict', '--config', 'c.json']),
      /missing required argument 'images'/,
      'beitseg predict',
    );
    assertUsageError(await beitseg(['eval']), /required option '--config <file>' not specified/, 'beitseg eval');
    assertUsageError(
      await beitseg(['make-synthetic-dataset', path.join(dir, 'd'), '--n', 'many']),
      /'many' is invalid.*positive integer/,
      'beitseg make-synthetic-dataset',
    );
  });

  it('every other error is one line with the same prefix, exit 1', async () => {
    for (const args of [
      ['inspect', path.join(dir, 'nope.pth')],
      ['convert', path.join(dir, 'nope.pth'), path.join(dir, 'out.safetensors')],
      ['plot-log', path.join(dir, 'nope.jsonl')],
      ['print-config', path.join(dir, 'nope.json')],
    ]) {
      const r = await beitseg(args);
      assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, /^beitseg: error: .*nope/, args[0]);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    }
  });

  it('enumerated options are checked on every command that takes them', async () => {
    const model = ['--config', tinyConfigPath, '--weights', weights];
    const cases: [string[], RegExp][] = [
      [['eval', ...model, '--mode', 'foo'], /'foo' is invalid\. Allowed choices are whole, slide/],
      [['predict', ...model, '--mode', 'foo', scene], /'foo' is invalid\. Allowed choices are whole, slide/],
      [['serve', ...model, '--mode', 'foo'], /'foo' is invalid\. Allowed choices are whole, slide/],
      [['eval', ...model, '--amp', 'fp8'], /'fp8' is invalid\. Allowed choices are bf16, fp16, fp32/],
      [['predict', ...model, '--amp', 'fp8', scene], /'fp8' is invalid\. Allowed choices are bf16, fp16, fp32/],
      [['serve', ...model, '--amp', 'fp8'], /'fp8' is invalid\. Allowed choices are bf16, fp16, fp32/],
      [
        ['train', '--config', tinyConfigPath, '--amp', 'fp8'],
        /'fp8' is invalid\. Allowed choices are bf16, fp16, fp32/,
      ],
      [['eval', ...model, '--quantize', 'int4'], /'int4' is invalid\. Allowed choices are int8/],
      [['eval', ...model, '--device', 'gpu'], /expected cpu, cuda or cuda:N, got 'gpu'/],
      [['predict', ...model, '--device', 'gpu', scene], /expected cpu, cuda or cuda:N, got 'gpu'/],
      [['train', '--config', tinyConfigPath, '--dist-backend', 'mpi'], /Allowed choices are gloo, nccl/],
      [['eval', ...model, '--window-batch', '1.5'], /expected a positive integer, got '1\.5'/],
    ];
    for (const [args, message] of cases) {
      // no addon: a usage error must come before anything loads
      assertUsageError(await beitseg(args, { env: noAddon }), message, `beitseg ${args[0]}`);
    }
    const evalHelp = await beitseg(['eval', '--help']);
    assert.match(evalHelp.stdout, /--amp <dtype>/);
  });

  it('predict refuses to run on random weights unless --random-weights is given', async () => {
    const out = path.join(dir, 'random');
    assertUsageError(
      await beitseg(['predict', '--config', tinyConfigPath, '--device', 'cpu', '--out', out, scene], { env: noAddon }),
      /no --weights given: pass --weights FILE, or --random-weights/,
      'beitseg predict',
    );
    assert.ok(!fs.existsSync(out));
    const both = await beitseg([
      'predict',
      '--config',
      tinyConfigPath,
      '--weights',
      weights,
      '--random-weights',
      scene,
    ]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /cannot be used with option '--weights/);
    const r = await beitseg([
      'predict',
      '--config',
      tinyConfigPath,
      '--random-weights',
      '--device',
      'cpu',
      '--out',
      out,
      scene,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /random weights/);
    assert.ok(fs.existsSync(path.join(out, 'scene_pred.png')));
  });

  it('--out naming a file fails before anything loads; eval --out naming a folder too', async () => {
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, 'x');
    const p = await beitseg(
      ['predict', '--config', tinyConfigPath, '--weights', weights, '--out', path.join(file, 'sub'), scene],
      { env: noAddon },
    );
    assertUsageError(p, /--out .*a-file\/sub: .*a-file is a file, not a folder/, 'beitseg predict');
    const e = await beitseg(['eval', '--config', tinyConfigPath, '--weights', weights, '--out', dir], { env: noAddon });
    assertUsageError(e, /--out .*: is a folder; name a file/, 'beitseg eval');
    const l = await beitseg(
      ['predict', '--config', tinyConfigPath, '--weights', weights, '--save-logits', dir, scene],
      { env: noAddon },
    );
    assertUsageError(l, /--save-logits .*: is a folder/, 'beitseg predict');
    assert.equal(fs.readFileSync(file, 'utf8'), 'x');
  });

  it('predict writes to work_dirs/<config>/predict by default and says where; --json prints the schema', async () => {
    const cwd = path.join(dir, 'cwd');
    fs.mkdirSync(cwd);
    const r = await beitseg(
      ['predict', '--config', tinyConfigPath, '--weights', weights, '--device', 'cpu', '--json', scene],
      {
        cwd,
      },
    );
    assert.equal(r.code, 0, r.stderr);
    const out = path.join('work_dirs', 'tiny_public_config', 'predict');
    assert.match(r.stderr, new RegExp(`wrote 1 prediction\\(s\\) to ${out.replaceAll('/', '\\/')}`));
    assert.deepEqual(fs.readdirSync(cwd), ['work_dirs']);
    const file = JSON.parse(fs.readFileSync(path.join(cwd, out, 'scene.json'), 'utf8')) as Record<string, unknown>;
    const printed = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(printed, { input: scene, ...file });
    // docs/json-schema.md: width, height, classes [{id, name, share, pixels, color}] largest first, present
    assert.deepEqual(Object.keys(file), ['width', 'height', 'classes', 'present']);
    const label = await readLabel(path.join(cwd, out, 'scene_pred.png'));
    assert.deepEqual([file.width, file.height], [label.width, label.height]);
    const classes = file.classes as { id: number; name: string; share: number; pixels: number; color: number[] }[];
    const counts = new Map<number, number>();
    for (const v of label.data) counts.set(v, (counts.get(v) ?? 0) + 1);
    assert.deepEqual(
      classes.map((c) => [c.id, c.pixels]),
      [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0]),
    );
    for (const c of classes) {
      assert.deepEqual(Object.keys(c), ['id', 'name', 'share', 'pixels', 'color']);
      assert.equal(c.share, Number((c.pixels / label.data.length).toFixed(6)));
      assert.equal(c.color.length, 3);
    }
    assert.deepEqual(
      file.present,
      classes.map((c) => c.name),
    );
  });

  describe('start-up', () => {
    const hooks = path.join(dir, 'hooks.mjs');
    const register = path.join(dir, 'register.mjs');
    before(() => {
      // records every module the command resolves (deterministic, unlike a time bound alone)
      fs.writeFileSync(
        hooks,
        "import fs from 'node:fs';\nexport async function resolve(s, c, next) {\n  const r = await next(s, c);\n" +
          '  fs.appendFileSync(process.env.BEITSEG_TEST_LOADED, r.url + "\\n");\n  return r;\n}\n',
      );
      fs.writeFileSync(
        register,
        `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
      );
    });

    const light: [string, string[]][] = [
      ['--help', ['--help']],
      ['--version', ['--version']],
      ['predict --help', ['predict', '--help']],
      ['print-config', ['print-config', tinyConfigPath]],
      ['a usage error', ['predict', '--config', tinyConfigPath, '--mode', 'foo', scene]],
      ['an unknown command', ['nope']],
    ];
    for (const [what, args] of light) {
      it(`${what} loads neither the addon nor sharp, fastify or the model code`, async () => {
        const log = path.join(dir, `loaded-${what.replace(/\W+/g, '_')}.txt`);
        const r = await beitseg(args, { env: { ...noAddon, BEITSEG_TEST_LOADED: log }, node: ['--import', register] });
        assert.ok(r.code === 0 || r.code === 2, `${what}: exit ${r.code}\n${r.stderr}`);
        assert.doesNotMatch(r.stderr, /native libtorch addon/);
        const loaded = fs.readFileSync(log, 'utf8').split('\n');
        const heavy = loaded.filter((u) =>
          /\/(sharp|fastify|onnxruntime-node)\/|\/dist\/src\/(tensor|nn|models|inference|serve)\//.test(u),
        );
        assert.deepEqual(heavy, []);
      });
    }

    it('--version takes little more than starting Node itself (loose bound; the machine may be busy)', async () => {
      const node: number[] = [];
      const version: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = process.hrtime.bigint();
        await new Promise((resolve) => execFile(process.execPath, ['-e', '0'], resolve));
        node.push(Number(process.hrtime.bigint() - t0) / 1e6);
        const v = await beitseg(['--version']);
        assert.equal(v.code, 0);
        version.push(v.ms);
      }
      const min = (xs: number[]) => Math.min(...xs);
      // measured 0.05-0.15 s over bare Node on a quiet machine; loading the addon and the model code cost 1-1.5 s
      assert.ok(min(version) < min(node) + 700, `beitseg --version ${min(version)} ms, node -e 0 ${min(node)} ms`);
    });
  });
});
