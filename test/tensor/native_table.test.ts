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
import { native } from '../../src/tensor/native.js';
import { repoRoot } from '../helpers.js';

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
