/** Worker-thread body of store_server.ts: one store, listening on exactly the address given. */
import net from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { StoreState } from './store_protocol.js';

const { host, port } = workerData as { host: string; port: number };
const state = new StoreState();
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  state.attach(socket);
});
server.on('error', (e: NodeJS.ErrnoException) => parentPort!.postMessage({ error: `${e.code ?? ''} ${e.message}` }));
// exclusive: a second store on the same port is an error, not a shared listener
server.listen({ host, port, exclusive: true }, () => {
  const a = server.address() as net.AddressInfo;
  parentPort!.postMessage({ address: a.address, port: a.port });
});
