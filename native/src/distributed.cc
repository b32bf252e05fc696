// Process groups on libtorch's c10d: TCPStore rendezvous, Gloo (CPU) and, in CUDA builds that
// ship it, NCCL; the collectives training and evaluation need, each bounded by a timeout that
// turns a dead or hung peer into a JS Error naming the rank and the operation; an
// autograd-aware all-reduce (SyncBN); and c10d's DDP Reducer (bucketed gradient averaging
// driven from autograd hooks as buckets become ready).
//
// JS interface (src/tensor/native.ts types it, src/distributed/ wraps it):
//   storeConnect(addr, port, timeoutMs, isServer) -> Promise<storeId> (a TCPStore client; the
//     server is src/distributed/store_server.ts, bound to the master address, or torchrun's
//     agent store; isServer: libtorch's own server, for libtorch 2.x whose protocol the JS
//     server does not speak)
//   storeSet(id, key, value) / storeGet(id, key) -> string / storeAdd(id, key, delta) -> number /
//   storeCheck(id, keys) -> bool / storeCompareSet(id, key, expected, desired) -> string /
//   storePort(id) -> number / storeClose(id)
//   pgInit(storeId, prefix, rank, size, timeoutMs, backend, hostname) -> Promise<pgId>
//   pgInfo(pgId) -> {rank, size, backend, port, timeoutMs}
//   pgAllreduce(pgId, t, op) / pgBroadcast(pgId, t, root) / pgAllgather(pgId, outs, t) /
//   pgBarrier(pgId) / pgBroadcastCoalesced(pgId, ts, root) -> workId (in place, asynchronous)
//   workWait(workId) (blocks at most the timeout) / workWaitAsync(workId) -> Promise
//   allreduceSumAutograd(pgId, t) -> t' (backward: all-reduce of the gradient)
//   ddpCreate(pgId, params, bucketMB, firstBucketMB) -> {id, buckets, mode}; ddpPrepare(ddpId);
//   ddpFinish(ddpId); ddpDispose(ddpId)
// DDP modes: "reducer" = c10d::Reducer (libtorch 1.x, whose constructor this file knows);
// "flat" = the same buckets flattened and all-reduced (asynchronously, all in flight at once)
// when ddpFinish is called after the backward pass: libtorch 2.x (the Reducer's constructor
// changes from release to release there; unrun here) or BEITSEG_DDP=flat.
//   pgDestroy(pgId)
// Handles are small integers in registries (not JS objects) so that the autograd function can
// name its group from any thread.
#include "common.h"

// c10d's Gloo header is empty unless this is set (libtorch's own build sets it)
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/comm.hpp>
#if TORCH_VERSION_MAJOR < 2
#include <torch/csrc/distributed/c10d/reducer.hpp>
#define BEITSEG_C10D_REDUCER 1
#endif
#ifdef BEITSEG_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

namespace beitseg {
namespace {

using Ms = std::chrono::milliseconds;

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  int rank = 0;
  int size = 1;
  int port = 0;
  Ms timeout{0};
  std::string backend;
};

struct PendingWork {
  c10::intrusive_ptr<c10d::Work> work;
  std::shared_ptr<Group> group;
  std::string op;
};

// Never destroyed: at process exit a group's destructor would join Gloo threads that may still
// wait on a dead peer; the OS reclaims everything anyway.
std::mutex& registry_mutex = *new std::mutex;
std::map<int64_t, std::shared_ptr<Group>>& groups = *new std::map<int64_t, std::shared_ptr<Group>>;
std::map<int64_t, PendingWork>& works = *new std::map<int64_t, PendingWork>;
struct Ddp {
  std::shared_ptr<Group> group;
#ifdef BEITSEG_C10D_REDUCER
  std::shared_ptr<c10d::Reducer> reducer;
#endif
  std::vector<at::Tensor> params;
  std::vector<std::vector<size_t>> buckets;  // flat mode
  bool armed = false;
};
std::map<int64_t, std::shared_ptr<Ddp>>& reducers = *new std::map<int64_t, std::shared_ptr<Ddp>>;
int64_t next_id = 1;

std::shared_ptr<Group> GetGroup(int64_t id) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = groups.find(id);
  if (it == groups.end())
    throw std::invalid_argument("process group " + std::to_string(id) + " does not exist (destroyed?)");
  return it->second;
}

int64_t AddWork(PendingWork w) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  const int64_t id = next_id++;
  works.emplace(id, std::move(w));
  return id;
}

PendingWork TakeWork(int64_t id) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = works.find(id);
  if (it == works.end())
    throw std::invalid_argument("work " + std::to_string(id) + " does not exist (already waited on?)");
  PendingWork w = std::move(it->second);
  works.erase(it);
  return w;
}

std::string Seconds(Ms t) {
  std::ostringstream s;
  s << static_cast<double>(t.count()) / 1000.0 << " s";
  return s.str();
}

// The message every failed collective carries: rank, operation and the likely cause.
std::string CollectiveError(const Group& g, const std::string& op, const std::string& what, bool timed_out) {
  std::string msg = "rank " + std::to_string(g.rank) + ": " + op;
  if (timed_out) return msg + " timed out after " + Seconds(g.timeout) + " (a peer rank gone or hung?): " + what;
  return msg + " failed (a peer rank gone?): " + what;
}

bool LooksLikeTimeout(const std::string& what) {
  return what.find("imed out") != std::string::npos || what.find("imeout") != std::string::npos;
}

std::string FirstLine(const std::string& s) {
  const size_t nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// Waits for a collective, at most the group's timeout; throws the named error otherwise.
void WaitOrThrow(const PendingWork& w) {
  const Group& g = *w.group;
  bool ok = false;
  try {
    ok = w.work->wait(g.timeout);
  } catch (const std::exception& e) {
    const std::string what = FirstLine(e.what());
    throw std::runtime_error(CollectiveError(g, w.op, what, LooksLikeTimeout(what)));
  }
  if (!ok) throw std::runtime_error(CollectiveError(g, w.op, "aborted", false));
}

c10d::ReduceOp ParseReduceOp(const std::string& op) {
  if (op == "sum") return c10d::ReduceOp::SUM;
  if (op == "max") return c10d::ReduceOp::MAX;
  if (op == "min") return c10d::ReduceOp::MIN;
  if (op == "product") return c10d::ReduceOp::PRODUCT;
  throw std::invalid_argument("all-reduce op must be sum, max, min or product, got '" + op + "'");
}

// The c10d objects differ between libtorch 1.x (backends are ProcessGroups) and 2.x (a
// ProcessGroup dispatches to Backends registered per device type).
#if TORCH_VERSION_MAJOR >= 2
// Unrun here (Debian ships 1.13). ProcessGroup took an Options(backend name, timeout) up to
// 2.5 and only (store, rank, size) later.
c10::intrusive_ptr<c10d::ProcessGroup> WrapBackend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                   Ms timeout, const std::string& name,
                                                   c10d::ProcessGroup::BackendType type, c10::DeviceType device,
                                                   c10::intrusive_ptr<c10d::Backend> backend) {
#if TORCH_VERSION_MINOR < 6
  auto pg = c10::make_intrusive<c10d::ProcessGroup>(store, rank, size,
                                                    c10::make_intrusive<c10d::ProcessGroup::Options>(name, timeout));
#else
  auto pg = c10::make_intrusive<c10d::ProcessGroup>(store, rank, size);
#endif
  pg->setDefaultBackend(type);
  pg->setBackend(device, type, backend);
  return pg;
}
#endif
c10::intrusive_ptr<c10d::ProcessGroup> MakeGloo(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                Ms timeout, const std::string& hostname) {
  auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
  if (ifname && *ifname) {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  } else if (!hostname.empty()) {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(hostname));
  } else {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  opts->threads = 2;
  auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, opts);
#if TORCH_VERSION_MAJOR >= 2
  // unrun here (Debian ships 1.13): the 2.x wrapper around a Gloo backend
  return WrapBackend(store, rank, size, timeout, "gloo", c10d::ProcessGroup::BackendType::GLOO, c10::DeviceType::CPU,
                     gloo);
#else
  return gloo;
#endif
}

#ifdef BEITSEG_WITH_NCCL
// Unrun: compiled only against CUDA builds of libtorch that ship ProcessGroupNCCL.
c10::intrusive_ptr<c10d::ProcessGroup> MakeNccl(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                Ms timeout) {
  auto opts = c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = timeout;
  auto nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, opts);
#if TORCH_VERSION_MAJOR >= 2
  return WrapBackend(store, rank, size, timeout, "nccl", c10d::ProcessGroup::BackendType::NCCL, c10::DeviceType::CUDA,
                     nccl);
#else
  return nccl;
#endif
}
#endif

// Store clients by id. On libtorch 1.x libtorch's own TCPStore server (isServer) is not used: it
// listens on every interface, while the JS server binds the master address only.
std::map<int64_t, c10::intrusive_ptr<c10d::TCPStore>>& stores =
    *new std::map<int64_t, c10::intrusive_ptr<c10d::TCPStore>>;

c10::intrusive_ptr<c10d::TCPStore> GetStore(int64_t id) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = stores.find(id);
  if (it == stores.end()) throw std::invalid_argument("store " + std::to_string(id) + " does not exist");
  return it->second;
}

std::vector<uint8_t> Bytes(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

std::string Text(const std::vector<uint8_t>& v) {
  return std::string(v.begin(), v.end());
}

struct InitRequest {
  int64_t store;
  std::string prefix, backend, hostname;
  int rank, size;
  Ms timeout;
};

std::shared_ptr<Group> CreateGroup(const InitRequest& r) {
  auto g = std::make_shared<Group>();
  g->rank = r.rank;
  g->size = r.size;
  g->timeout = r.timeout;
  g->backend = r.backend;
  auto tcp = GetStore(r.store);
  g->port = tcp->getPort();
  g->store = c10::make_intrusive<c10d::PrefixStore>(r.prefix + "/" + r.backend, tcp);
  try {
    if (r.backend == "gloo") {
      g->pg = MakeGloo(g->store, r.rank, r.size, r.timeout, r.hostname);
    } else if (r.backend == "nccl") {
#ifdef BEITSEG_WITH_NCCL
      g->pg = MakeNccl(g->store, r.rank, r.size, r.timeout);
#else
      throw std::invalid_argument(
          "this build has no NCCL (a CUDA build of libtorch 2.x provides it): use backend gloo");
#endif
    } else {
      throw std::invalid_argument("backend must be gloo or nccl, got '" + r.backend + "'");
    }
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::exception& e) {
    throw std::runtime_error("rank " + std::to_string(r.rank) + ": " + r.backend +
                             " process group setup failed: " + FirstLine(e.what()));
  }
  return g;
}

class ConnectWorker : public Napi::AsyncWorker {
 public:
  ConnectWorker(Napi::Env env, std::string addr, int port, Ms timeout, bool server)
      : Napi::AsyncWorker(env),
        addr_(std::move(addr)),
        port_(port),
        timeout_(timeout),
        server_(server),
        deferred_(env) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(port_);
    so.isServer = server_;
    so.waitWorkers = false;
    so.timeout = timeout_;
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(addr_, so);
    } catch (const std::exception& e) {
      SetError("cannot reach the rendezvous store at " + addr_ + ":" + std::to_string(port_) + " within " +
               Seconds(timeout_) + " (is rank 0 or the launcher of node 0 running, MASTER_ADDR/MASTER_PORT right?): " +
               FirstLine(e.what()));
    }
  }
  void OnOK() override {
    int64_t id;
    {
      std::lock_guard<std::mutex> lock(registry_mutex);
      id = next_id++;
      stores.emplace(id, store_);
    }
    deferred_.Resolve(Napi::Number::New(Env(), static_cast<double>(id)));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::string addr_;
  int port_;
  Ms timeout_;
  bool server_;
  c10::intrusive_ptr<c10d::TCPStore> store_;
  Napi::Promise::Deferred deferred_;
};

class InitWorker : public Napi::AsyncWorker {
 public:
  InitWorker(Napi::Env env, InitRequest req) : Napi::AsyncWorker(env), req_(std::move(req)), deferred_(env) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      group_ = CreateGroup(req_);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    int64_t id;
    {
      std::lock_guard<std::mutex> lock(registry_mutex);
      id = next_id++;
      groups.emplace(id, group_);
    }
    deferred_.Resolve(Napi::Number::New(Env(), static_cast<double>(id)));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  InitRequest req_;
  std::shared_ptr<Group> group_;
  Napi::Promise::Deferred deferred_;
};

class WaitWorker : public Napi::AsyncWorker {
 public:
  WaitWorker(Napi::Env env, PendingWork w) : Napi::AsyncWorker(env), work_(std::move(w)), deferred_(env) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      WaitOrThrow(work_);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  PendingWork work_;
  Napi::Promise::Deferred deferred_;
};

// Runs one collective to completion on the calling thread (bounded by the group's timeout).
void RunSync(const std::shared_ptr<Group>& g, const std::string& op,
             const std::function<c10::intrusive_ptr<c10d::Work>()>& start) {
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = start();
  } catch (const std::exception& e) {
    throw std::runtime_error(CollectiveError(*g, op, FirstLine(e.what()), false));
  }
  WaitOrThrow(PendingWork{work, g, op});
}

void AllreduceSumSync(const std::shared_ptr<Group>& g, at::Tensor& t, const std::string& op) {
  std::vector<at::Tensor> ts{t};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::SUM;
  RunSync(g, op, [&]() { return g->pg->allreduce(ts, o); });
}

// y = sum over ranks of x; the gradient of a sum over ranks is the sum of the gradients.
struct AllreduceSumFn : public torch::autograd::Function<AllreduceSumFn> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t group_id) {
    ctx->saved_data["group"] = group_id;
    at::Tensor y = x.detach().clone().contiguous();
    AllreduceSumSync(GetGroup(group_id), y, "allreduce (forward of a synchronised statistic)");
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const int64_t group_id = ctx->saved_data["group"].toInt();
    at::Tensor g = grads[0].detach().clone().contiguous();
    AllreduceSumSync(GetGroup(group_id), g, "allreduce (backward of a synchronised statistic)");
    return {g, at::Tensor()};
  }
};

int64_t GroupArg(const Napi::CallbackInfo& info) {
  return ArgInt(info, 0);
}

std::shared_ptr<Ddp> GetReducer(int64_t id) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = reducers.find(id);
  if (it == reducers.end())
    throw std::invalid_argument("DDP reducer " + std::to_string(id) + " does not exist (disposed?)");
  return it->second;
}

}  // namespace

BEITSEG_OP(storeConnect) {
  const std::string addr = ArgString(info, 0);
  const auto port = ArgInt(info, 1), timeout = ArgInt(info, 2);
  const bool server = ArgBool(info, 3);
  if (port < (server ? 0 : 1) || port > 65535)
    throw std::invalid_argument("port " + std::to_string(port) + " is not in 1..65535");
  if (timeout <= 0) throw std::invalid_argument("timeout must be positive (milliseconds)");
  auto* worker = new ConnectWorker(env, addr, static_cast<int>(port), Ms(timeout), server);
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

// The store operations below are short requests to a server that answers at once (they never
// wait for a key: callers check first), so they run on the calling thread.
BEITSEG_OP(storeSet) {
  GetStore(ArgInt(info, 0))->set(ArgString(info, 1), Bytes(ArgString(info, 2)));
  return env.Undefined();
}

BEITSEG_OP(storeGet) {
  return Napi::String::New(env, Text(GetStore(ArgInt(info, 0))->get(ArgString(info, 1))));
}

BEITSEG_OP(storeAdd) {
  return Napi::Number::New(env,
                           static_cast<double>(GetStore(ArgInt(info, 0))->add(ArgString(info, 1), ArgInt(info, 2))));
}

// Argument i as a list of strings (store keys), with the same TypeErrors as common.cc's Arg* readers.
static std::vector<std::string> ArgStringList(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || info[i].IsUndefined())
    throw Napi::TypeError::New(info.Env(), "missing argument " + std::to_string(i));
  if (!info[i].IsArray())
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be an array of strings");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a.Get(k);
    if (!v.IsString())
      throw Napi::TypeError::New(info.Env(),
                                 "argument " + std::to_string(i) + "[" + std::to_string(k) + "] must be a string");
    out.push_back(v.As<Napi::String>().Utf8Value());
  }
  return out;
}

BEITSEG_OP(storeCheck) {
  const auto store = ArgInt(info, 0);
  const std::vector<std::string> keys = ArgStringList(info, 1);
  return Napi::Boolean::New(env, GetStore(store)->check(keys));
}

BEITSEG_OP(storeCompareSet) {
  auto v =
      GetStore(ArgInt(info, 0))->compareSet(ArgString(info, 1), Bytes(ArgString(info, 2)), Bytes(ArgString(info, 3)));
  return Napi::String::New(env, Text(v));
}

BEITSEG_OP(storePort) {
  return Napi::Number::New(env, GetStore(ArgInt(info, 0))->getPort());
}

BEITSEG_OP(storeClose) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  stores.erase(ArgInt(info, 0));
  return env.Undefined();
}

BEITSEG_OP(pgInit) {
  InitRequest r{ArgInt(info, 0),
                ArgString(info, 1),
                ArgString(info, 5),
                ArgString(info, 6),
                static_cast<int>(ArgInt(info, 2)),
                static_cast<int>(ArgInt(info, 3)),
                Ms(ArgInt(info, 4))};
  if (r.size < 1 || r.rank < 0 || r.rank >= r.size) {
    throw std::invalid_argument("rank " + std::to_string(r.rank) + " is outside world size " + std::to_string(r.size));
  }
  if (r.timeout.count() <= 0) throw std::invalid_argument("timeout must be positive (milliseconds)");
  GetStore(r.store);
  auto* worker = new InitWorker(env, std::move(r));
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

BEITSEG_OP(pgInfo) {
  auto g = GetGroup(GroupArg(info));
  Napi::Object o = Napi::Object::New(env);
  o.Set("rank", g->rank);
  o.Set("size", g->size);
  o.Set("backend", g->backend);
  o.Set("port", g->port);
  o.Set("timeoutMs", static_cast<double>(g->timeout.count()));
  return o;
}

BEITSEG_OP(pgDestroy) {
  const int64_t id = GroupArg(info);
  std::shared_ptr<Group> g;
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto it = groups.find(id);
    if (it == groups.end()) return env.Undefined();
    g = it->second;
    groups.erase(it);
  }
  return env.Undefined();
}

BEITSEG_OP(pgAllreduce) {
  auto g = GetGroup(GroupArg(info));
  std::vector<at::Tensor> ts{ArgTensor(info, 1)};
  c10d::AllreduceOptions o;
  o.reduceOp = ParseReduceOp(ArgString(info, 2));
  return Napi::Number::New(env, static_cast<double>(AddWork({g->pg->allreduce(ts, o), g, "allreduce"})));
}

BEITSEG_OP(pgBroadcast) {
  auto g = GetGroup(GroupArg(info));
  std::vector<at::Tensor> ts{ArgTensor(info, 1)};
  c10d::BroadcastOptions o;
  o.rootRank = static_cast<int>(ArgInt(info, 2));
  if (o.rootRank < 0 || o.rootRank >= g->size)
    throw std::invalid_argument("broadcast root " + std::to_string(o.rootRank) + " is not a rank");
  return Napi::Number::New(env, static_cast<double>(AddWork({g->pg->broadcast(ts, o), g, "broadcast"})));
}

BEITSEG_OP(pgAllgather) {
  auto g = GetGroup(GroupArg(info));
  std::vector<std::vector<at::Tensor>> outs{ArgTensorList(info, 1)};
  std::vector<at::Tensor> in{ArgTensor(info, 2)};
  if (static_cast<int>(outs[0].size()) != g->size) {
    throw std::invalid_argument("allgather needs one output tensor per rank (" + std::to_string(g->size) + "), got " +
                                std::to_string(outs[0].size()));
  }
  return Napi::Number::New(env, static_cast<double>(AddWork({g->pg->allgather(outs, in), g, "allgather"})));
}

BEITSEG_OP(pgBarrier) {
  auto g = GetGroup(GroupArg(info));
  return Napi::Number::New(env, static_cast<double>(AddWork({g->pg->barrier(), g, "barrier"})));
}

// Broadcasts many tensors from `root` in flattened buckets (c10d::broadcast_coalesced, as DDP
// does for the parameters and buffers at start). Synchronous, bounded by the timeout.
BEITSEG_OP(pgBroadcastCoalesced) {
  auto g = GetGroup(GroupArg(info));
  std::vector<at::Tensor> ts = ArgTensorList(info, 1);
  const int root = static_cast<int>(ArgInt(info, 2));
  c10::NoGradGuard no_grad;
  try {
    c10d::broadcast_coalesced(g->pg, ts, 256 * 1024 * 1024, root);
  } catch (const std::exception& e) {
    const std::string what = FirstLine(e.what());
    throw std::runtime_error(CollectiveError(*g, "broadcast of parameters and buffers", what, LooksLikeTimeout(what)));
  }
  return env.Undefined();
}

BEITSEG_OP(workWait) {
  WaitOrThrow(TakeWork(ArgInt(info, 0)));
  return env.Undefined();
}

BEITSEG_OP(workWaitAsync) {
  auto* worker = new WaitWorker(env, TakeWork(ArgInt(info, 0)));
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

BEITSEG_OP(allreduceSumAutograd) {
  const int64_t id = GroupArg(info);
  GetGroup(id);
  return TensorHandle::Wrap(env, AllreduceSumFn::apply(ArgTensor(info, 1), id));
}

// Buckets as DDP assigns them: parameters in reverse order, the first bucket up to
// `first_bytes`, the others up to `bucket_bytes`.
std::vector<std::vector<size_t>> FlatBuckets(const std::vector<at::Tensor>& params, size_t first_bytes,
                                             size_t bucket_bytes) {
  std::vector<std::vector<size_t>> buckets(1);
  size_t filled = 0;
  for (size_t k = params.size(); k-- > 0;) {
    const size_t bytes = params[k].numel() * params[k].element_size();
    const size_t cap = buckets.size() == 1 ? first_bytes : bucket_bytes;
    if (!buckets.back().empty() &&
        (filled + bytes > cap || params[k].scalar_type() != params[buckets.back()[0]].scalar_type())) {
      buckets.emplace_back();
      filled = 0;
    }
    buckets.back().push_back(k);
    filled += bytes;
  }
  return buckets;
}

// ddpCreate(pg, params, bucketMB, firstBucketMB): DDP over `params` (see the header for the modes).
BEITSEG_OP(ddpCreate) {
  auto g = GetGroup(GroupArg(info));
  std::vector<at::Tensor> params = ArgTensorList(info, 1);
  const double bucket_mb = ArgDouble(info, 2), first_mb = ArgDouble(info, 3);
  if (params.empty()) throw std::invalid_argument("ddpCreate: no parameters");
  for (size_t i = 0; i < params.size(); i++) {
    if (!params[i].requires_grad())
      throw std::invalid_argument("ddpCreate: parameter " + std::to_string(i) + " does not require grad");
  }
  const auto bucket_bytes = static_cast<int64_t>(bucket_mb * 1024 * 1024);
  const auto first_bytes = static_cast<int64_t>(first_mb * 1024 * 1024);
  auto d = std::make_shared<Ddp>();
  d->group = g;
  d->params = params;
  // A gradient can reach AccumulateGrad as a view with other strides than its parameter in
  // dimensions of size 1 (the layout contract ignores those): a [1, 1, C] class token at batch 1
  // gets a slice of the [1, L, C] token gradient (strides L*C, C, 1). The Reducer then copies it
  // into its bucket view strided and warns "Grad strides do not match bucket view strides"; a
  // hook before accumulation gives it the parameter's strides instead (the same one copy).
  for (auto& p : params) {
    if (p.is_sparse() || !p.is_non_overlapping_and_dense()) continue;
    std::vector<int64_t> strides = p.strides().vec();
    p.register_hook([strides](const at::Tensor& grad) -> at::Tensor {
      if (!grad.defined() || grad.is_sparse() || grad.strides() == c10::IntArrayRef(strides)) return at::Tensor();
      return at::empty_strided(grad.sizes(), strides, grad.options()).copy_(grad);
    });
  }
  const char* mode_env = std::getenv("BEITSEG_DDP");
  bool flat = mode_env && std::string(mode_env) == "flat";
#ifdef BEITSEG_C10D_REDUCER
  try {
    c10d::verify_params_across_processes(g->pg, params, c10::nullopt);
  } catch (const std::exception& e) {
    throw std::runtime_error("rank " + std::to_string(g->rank) +
                             ": the model differs from rank 0's: " + FirstLine(e.what()));
  }
  size_t bucket_count = 0;
  if (!flat) {
    std::vector<bool> sparse(params.size(), false);
    auto assignment = c10d::compute_bucket_assignment_by_size(
        params, {static_cast<size_t>(first_bytes), static_cast<size_t>(bucket_bytes)}, sparse);
    std::vector<std::vector<size_t>> buckets(std::get<0>(assignment).rbegin(), std::get<0>(assignment).rend());
    std::vector<size_t> limits(std::get<1>(assignment).rbegin(), std::get<1>(assignment).rend());
    std::unordered_map<size_t, std::string> names;
    bucket_count = buckets.size();
    d->reducer = std::make_shared<c10d::Reducer>(params, buckets, limits, g->pg, sparse, bucket_bytes, false, false,
                                                 names, first_bytes);
  }
#else
  flat = true;
#endif
  if (flat) d->buckets = FlatBuckets(params, static_cast<size_t>(first_bytes), static_cast<size_t>(bucket_bytes));
  int64_t id;
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    id = next_id++;
    reducers.emplace(id, d);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", static_cast<double>(id));
#ifdef BEITSEG_C10D_REDUCER
  o.Set("buckets", static_cast<double>(flat ? d->buckets.size() : bucket_count));
#else
  o.Set("buckets", static_cast<double>(d->buckets.size()));
#endif
  o.Set("mode", flat ? "flat" : "reducer");
  return o;
}

// Arms gradient averaging for the next backward pass (DDP's forward with grad sync on). Reducer
// mode: the gradients of that pass are all-reduced bucket by bucket during it and averaged
// before backward returns. Flat mode: ddpFinish averages them.
BEITSEG_OP(ddpPrepare) {
  auto d = GetReducer(ArgInt(info, 0));
#ifdef BEITSEG_C10D_REDUCER
  if (d->reducer) {
    d->reducer->prepare_for_forward();
    d->reducer->prepare_for_backward({});
    return env.Undefined();
  }
#endif
  d->armed = true;
  return env.Undefined();
}

// Flat mode, after an armed backward pass: every bucket's gradients flattened and all-reduced
// (all buckets in flight at once), divided by the world size and copied back. A parameter
// without a gradient contributes zeros and gets the average. No-op in reducer mode.
BEITSEG_OP(ddpFinish) {
  auto d = GetReducer(ArgInt(info, 0));
  if (!d->armed) return env.Undefined();
  d->armed = false;
  c10::NoGradGuard no_grad;
  std::vector<at::Tensor> flats;
  std::vector<PendingWork> pending;
  for (const auto& bucket : d->buckets) {
    std::vector<at::Tensor> parts;
    for (size_t k : bucket) {
      const at::Tensor& gr = d->params[k].grad();
      parts.push_back(gr.defined() ? gr.reshape(-1) : at::zeros({d->params[k].numel()}, d->params[k].options()));
    }
    flats.push_back(at::cat(parts));
    std::vector<at::Tensor> ts{flats.back()};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    pending.push_back(PendingWork{d->group->pg->allreduce(ts, o), d->group, "allreduce (gradients)"});
  }
  for (const auto& w : pending) WaitOrThrow(w);
  const double world = d->group->size;
  for (size_t b = 0; b < d->buckets.size(); b++) {
    flats[b].div_(world);
    int64_t offset = 0;
    for (size_t k : d->buckets[b]) {
      at::Tensor& p = d->params[k];
      at::Tensor avg = flats[b].narrow(0, offset, p.numel()).view_as(p);
      offset += p.numel();
      if (p.grad().defined())
        p.mutable_grad().copy_(avg);
      else
        p.mutable_grad() = avg.clone();
    }
  }
  return env.Undefined();
}

BEITSEG_OP(ddpDispose) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  reducers.erase(ArgInt(info, 0));
  return env.Undefined();
}

BEITSEG_OP(ncclAvailable) {
#ifdef BEITSEG_WITH_NCCL
  return Napi::Boolean::New(env, true);
#else
  return Napi::Boolean::New(env, false);
#endif
}

void RegisterDistributed(Napi::Env env, Napi::Object exports) {
  BEITSEG_EXPORT(exports, storeConnect);
  BEITSEG_EXPORT(exports, storeSet);
  BEITSEG_EXPORT(exports, storeGet);
  BEITSEG_EXPORT(exports, storeAdd);
  BEITSEG_EXPORT(exports, storeCheck);
  BEITSEG_EXPORT(exports, storeCompareSet);
  BEITSEG_EXPORT(exports, storePort);
  BEITSEG_EXPORT(exports, storeClose);
  BEITSEG_EXPORT(exports, pgInit);
  BEITSEG_EXPORT(exports, pgInfo);
  BEITSEG_EXPORT(exports, pgDestroy);
  BEITSEG_EXPORT(exports, pgAllreduce);
  BEITSEG_EXPORT(exports, pgBroadcast);
  BEITSEG_EXPORT(exports, pgAllgather);
  BEITSEG_EXPORT(exports, pgBarrier);
  BEITSEG_EXPORT(exports, pgBroadcastCoalesced);
  BEITSEG_EXPORT(exports, workWait);
  BEITSEG_EXPORT(exports, workWaitAsync);
  BEITSEG_EXPORT(exports, allreduceSumAutograd);
  BEITSEG_EXPORT(exports, ddpCreate);
  BEITSEG_EXPORT(exports, ddpPrepare);
  BEITSEG_EXPORT(exports, ddpFinish);
  BEITSEG_EXPORT(exports, ddpDispose);
  BEITSEG_EXPORT(exports, ncclAvailable);
}

}  // namespace beitseg
