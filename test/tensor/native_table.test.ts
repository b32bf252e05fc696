/**
 * The addon's exports and the hand-typed NativeAddon interface (src/tensor/native.ts) name the
 * same functions (issue 13.5): an op added to the C++ side without its typing, or typed without
 * an export, fails here. The interface's member names are read with the TypeScript compiler API.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { native, type NativeHandle, type PackedInt8Linear } from '../../src/tensor/native.js';
import { repoRoot } from '../helpers.js';
import { jsStoreSupported, startStoreServer } from '../../src/distributed/store_server.js';

function interfaceMembers(file: string, name: string): string[] {
  const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const decl = source.statements.find(
    (s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === name,
  );
  assert.ok(decl, `interface ${name} in ${file}`);
  return decl.members.map((m) => {
    assert.ok(
      m.name && (ts.isIdentifier(m.name) || ts.isStringLiteral(m.name)),
      `named member in ${name}: ${m.getText(source)}`,
    );
    return m.name.text;
  });
}

test("NativeAddon lists exactly the addon's exports", () => {
  const typed = new Set(interfaceMembers(path.join(repoRoot, 'src', 'tensor', 'native.ts'), 'NativeAddon'));
  const exported = new Set(Object.keys(native));
  assert.ok(typed.size > 50, `parsed ${typed.size} members`);
  const untyped = [...exported].filter((k) => !typed.has(k)).sort();
  const missing = [...typed].filter((k) => !exported.has(k)).sort();
  assert.deepEqual(
    { exportedButNotTyped: untyped, typedButNotExported: missing },
    { exportedButNotTyped: [], typedButNotExported: [] },
  );
});

/** One parameter of a NativeAddon member, as declared: its name, type text, and whether it may be left out. */
interface Param {
  name: string;
  type: string;
  optional: boolean;
}

/** Every method of NativeAddon with its parameter lists (an overloaded op has several). */
function interfaceSignatures(file: string, name: string): Map<string, Param[][]> {
  const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const decl = source.statements.find(
    (s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === name,
  );
  assert.ok(decl, `interface ${name} in ${file}`);
  const out = new Map<string, Param[][]>();
  for (const m of decl.members) {
    if (!ts.isMethodSignature(m) || !ts.isIdentifier(m.name)) continue;
    const params = m.parameters.map((p) => {
      const type = p.type?.getText(source) ?? 'unknown';
      return { name: p.name.getText(source), type, optional: !!p.questionToken || /^Opt</.test(type) };
    });
    out.set(m.name.text, [...(out.get(m.name.text) ?? []), params]);
  }
  return out;
}

/** A value of the declared kind that the addon accepts in this parameter (by type, then by name). */
function validValue(p: Param, ctx: { t: NativeHandle; packed: PackedInt8Linear; pg: number; store: number }): unknown {
  const type = p.type.replace(/^Opt<(.*)>$/, '$1');
  switch (type) {
    case 'H':
    case 'Num':
      return ctx.t;
    case 'H[]':
      return [ctx.t];
    case 'number[]':
      return [1];
    case 'string[]':
      return ['k'];
    case 'boolean':
      return false;
    case 'ArrayBufferView':
      return new Float32Array(1);
    case 'PackedInt8Linear':
      return ctx.packed;
    case 'Partial<CudaFlags>':
      return {};
    case 'number':
      return { pg: ctx.pg, store: ctx.store, size: 1, timeoutMs: 10_000, step: 1 }[p.name] ?? 0;
    default: {
      const byName: Record<string, string> = {
        dtype: 'float32',
        device: 'cpu',
        deviceType: 'cpu',
        reduction: 'mean',
        op: 'sum',
        backend: 'gloo',
        format: 'contiguous',
        addr: '127.0.0.1',
        hostname: '127.0.0.1',
      };
      assert.ok(['string', 'AttentionImpl', 'ConvAlgorithm'].includes(type), `a value for ${p.name}: ${p.type}`);
      return byName[p.name] ?? 'auto';
    }
  }
}

/** A value of another kind: a string where anything else is declared, a number where a string is. */
function wrongValue(p: Param): unknown {
  return /^(Opt<)?(string|AttentionImpl|ConvAlgorithm)>?$/.test(p.type) ? 1 : 'x';
}

/** '' when calling `op` throws a TypeError naming argument `at` (or a later one, with `later`), else what it did. */
function typeErrorAt(op: string, args: unknown[], at: number, later: boolean): string {
  const fn = (native as unknown as Record<string, (...a: unknown[]) => unknown>)[op];
  let result: unknown;
  try {
    result = fn(...args);
  } catch (e) {
    const named = /argument (\d+)/.exec((e as Error).message);
    const ok = e instanceof TypeError && named && (later ? Number(named[1]) >= at : Number(named[1]) === at);
    return ok ? '' : `threw ${(e as Error).name}: ${(e as Error).message}`;
  }
  if (result instanceof Promise) result.catch(() => {});
  return 'returned instead of throwing';
}

test('each op throws a TypeError naming the argument when one is missing or of the wrong kind', async () => {
  const signatures = interfaceSignatures(path.join(repoRoot, 'src', 'tensor', 'native.ts'), 'NativeAddon');
  // 4-d, as attention's q reads its shape before its other arguments
  const t = native.zeros([1, 1, 2, 2], 'float32');
  const w = native.zeros([2, 2], 'float32');
  const packed = native.int8LinearPrepack(w, null);
  // a one-rank group on the loopback store (beitseg's own server where libtorch 1.x's cannot bind one address)
  const js = jsStoreSupported();
  const server = js ? await startStoreServer('127.0.0.1', 0) : null;
  const store = await native.storeConnect('127.0.0.1', server?.port ?? 0, 10_000, !js);
  const pg = await native.pgInit(store, 'native_table/', 0, 1, 10_000, 'gloo', '127.0.0.1');
  const ctx = { t, packed, pg, store };
  const wrong: string[] = [];
  let checked = 0;
  try {
    for (const [op, overloads] of signatures) {
      if (op.startsWith('cudaGraph') && op !== 'cudaGraphsSupported' && !native.cudaGraphsSupported()) {
        // Built without CUDA graphs, these ops say so before they read their arguments.
        assert.throws(() => (native as unknown as Record<string, () => void>)[op](), /CUDA graphs need a CUDA build/);
        continue;
      }
      // Overloads (max, min) share their leading parameters: check the longest, and an argument
      // as missing only where every overload requires it.
      const params = overloads.reduce((a, b) => (b.length > a.length ? b : a));
      const required = Math.min(...overloads.map((o) => o.map((p) => !p.optional).lastIndexOf(true) + 1));
      const valid = params.map((p) => validValue(p, ctx));
      for (let i = 0; i < params.length; i++) {
        const call = (args: unknown[]): string => {
          checked++;
          return typeErrorAt(op, args, i, args.length === i);
        };
        if (i < required && !params[i].optional) {
          const got = call(valid.slice(0, i));
          if (got) wrong.push(`${op}: argument ${i} (${params[i].name}) missing: ${got}`);
        }
        const got = call(valid.map((v, k) => (k === i ? wrongValue(params[i]) : v)));
        if (got) wrong.push(`${op}: argument ${i} (${params[i].name}: ${params[i].type}) of another kind: ${got}`);
      }
    }
  } finally {
    native.pgDestroy(pg);
    native.storeClose(store);
    await server?.close();
    t.dispose();
    w.dispose();
  }
  assert.ok(checked > 300, `checked ${checked} calls`);
  assert.deepEqual(wrong, []);
});
