/**
 * /openapi.json: an OpenAPI 3.0 document built from the routes as registered (their paths,
 * methods and querystring schemas), so it cannot drift from what the server validates. Written
 * here because @fastify/swagger is not among the project's dependencies; the shape is small.
 */
import type { Dict } from '../config/schema.js';

export interface RouteDoc {
  method: string;
  url: string;
  summary: string;
  schema?: Dict;
  /** The route takes an image body (raw bytes or multipart). */
  requestBody?: boolean;
  /** Request paths (with query) that work as examples: the tests run each one. */
  examples?: string[];
}

export function openApiDocument(routes: RouteDoc[], info: { version: string; bearer: boolean }): Dict {
  const paths: Dict = {};
  for (const r of routes) {
    const query = (r.schema?.querystring ?? null) as { properties?: Dict } | null;
    const params = (r.schema?.params ?? null) as { properties?: Dict } | null;
    const parameters = [
      ...Object.entries(params?.properties ?? {}).map(([name, schema]) => ({
        name,
        in: 'path',
        required: true,
        schema,
      })),
      ...Object.entries(query?.properties ?? {}).map(([name, schema]) => ({
        name,
        in: 'query',
        required: false,
        schema,
      })),
    ];
    const op: Dict = {
      summary: r.summary,
      parameters,
      responses: {
        200: { description: 'OK' },
        400: { description: 'Bad request or outside the serving policy', content: errorContent },
        ...(info.bearer ? { 401: { description: 'Missing or invalid bearer token', content: errorContent } } : {}),
        503: { description: 'Queue full or shutting down (Retry-After)', content: errorContent },
      },
      ...(info.bearer ? { security: [{ bearer: [] }] } : {}),
      ...(r.examples ? { 'x-examples': r.examples } : {}),
    };
    if (r.requestBody) {
      op.requestBody = {
        required: true,
        content: {
          'image/*': { schema: { type: 'string', format: 'binary' } },
          'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
          'multipart/form-data': {
            schema: { type: 'object', properties: { file: { type: 'string', format: 'binary' } } },
          },
        },
      };
    }
    // Fastify's /v1/models/:name is OpenAPI's /v1/models/{name}
    const url = r.url.replace(/:([A-Za-z_]\w*)/g, '{$1}');
    const methods = (paths[url] ?? {}) as Dict;
    for (const m of r.method.split(',')) methods[m.toLowerCase()] = op;
    paths[url] = methods;
  }
  return {
    openapi: '3.0.3',
    info: { title: 'beitseg serve', version: info.version },
    paths,
    components: {
      schemas: { Error: { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] } },
      ...(info.bearer ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } : {}),
    },
  };
}

const errorContent = { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };
