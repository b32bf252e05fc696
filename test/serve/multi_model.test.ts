/**
 * Issue 29 item 5: `--model name=config,weights` repeated serves several models from one process,
 * each in its own worker with its own queue: /v1/models lists them, /v1/models/{name}/segment
 * routes to the named one (the first is also /v1/segment), an unknown name is 404.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { tinyConfigPath } from '../helpers.js';
import { encodeTestImage, post, spawnServer, tinyWeights, type ChildServer } from './serve_helpers.js';

interface ModelsBody {
  models: { name: string; weights: { file: string } | null; queue: number; capacity: number; alive: boolean }[];
}

describe('serve several models', () => {
  let srv: ChildServer;
  let png: Buffer;
  before(async () => {
    png = await encodeTestImage(96, 80);
    // "random": the same architecture without weights (--random-weights says so), so its answers differ
    srv = await spawnServer(['--queue', '3', '--random-weights'], 90_000, [
      '--model',
      `trained=${tinyConfigPath},${tinyWeights}`,
      '--model',
      `random=${tinyConfigPath}`,
    ]);
  });
  after(() => {
    srv.child.kill('SIGKILL');
  });

  it('lists the models, each with its own queue', async () => {
    const body = (await (await fetch(`${srv.url}/v1/models`)).json()) as ModelsBody;
    assert.deepEqual(
      body.models.map((m) => [m.name, m.weights?.file ?? null, m.capacity, m.alive]),
      [
        ['trained', 'segmentor_state_dict.safetensors', 3, true],
        ['random', null, 3, true],
      ],
    );
    const one = (await (await fetch(`${srv.url}/v1/models/random`)).json()) as { weights: unknown };
    assert.equal(one.weights, null);
    assert.match(srv.stderr(), /models trained, random/);
  });

  it('routes a request to the named model; the first is also /v1/segment', async () => {
    const label = async (path: string): Promise<Buffer> => {
      const r = await post(`${srv.url}${path}?format=label`, png);
      assert.equal(r.status, 200, path);
      return Buffer.from(await r.arrayBuffer());
    };
    const trained = await label('/v1/models/trained/segment');
    assert.deepEqual(await label('/v1/segment'), trained);
    assert.notDeepEqual(await label('/v1/models/random/segment'), trained);
    const unknown = await post(`${srv.url}/v1/models/nope/segment`, png);
    assert.equal(unknown.status, 404);
    assert.match(((await unknown.json()) as { error: string }).error, /no model named 'nope'/);
  });
});
