/// \file
/// The ownership and cancellation tree: `scope_node` (anything tasks can be children of) and
/// `task_node` (the state of one spawned task, embedded in its coroutine promise).
///
/// Protocols (implemented in runtime/scheduler/task_lifecycle.cpp):
///
/// Spawn. The spawner links the child under a scope (its own task, a group, or the runtime's
/// root), gives it two references (the running body and the returned handle) and pushes it on a
/// run queue. A task counts the children it spawned in a plain owner-only counter; the children
/// count down a shared, biased counter (`m_pending`), so a spawn costs no atomic on the parent.
///
/// Completion. When the body returns or throws, `finish_spawned` folds the owner count into
/// `m_pending` (`+= spawned - bias`); whoever brings it to zero (the body or the last child)
/// completes the task: it settles the outcome, publishes DONE in `m_state` (dropping the body's
/// reference and picking up a registered joiner), and only then tells the parent scope, so a
/// parent never completes before its children are visibly done. When the registered joiner is
/// the parent itself, the child skips that last step: the parent is suspended until DONE and,
/// once resumed, takes the child off its owner count (`joined_while_waiting`), so joined
/// children cost their parent no atomic at all.
///
/// Failures nobody observes. A failed task whose handle is already gone reports the failure to
/// its parent before telling it that it completed, so the parent is still open and fails with it.
/// If a handle still exists, the task keeps a reference on its parent; when the last reference
/// goes and nobody looked at the failure, it is reported then (to the parent if it is still open,
/// else to the runtime's `on_unhandled_exception`).
///
/// Cancellation. A cancel request is published once per scope (`m_cancel`) and bumps the global
/// `g_cancel_epoch`. A task caches the epoch at which it last found its scope chain uncancelled,
/// so the hot-path check is one relaxed load; only when the epoch moved does it walk its parents,
/// stopping at the first ancestor task that already verified the current epoch (so a deep chain
/// costs each task O(1), not O(depth)). The walk is memory-safe because no scope completes
/// before its children.
#pragma once

#include "corun/cancelled.hpp"

#include "corun/detail/cancel_registration.hpp"
#include "corun/detail/config.hpp"

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace corun::detail {

class runtime_core;
class root_scope;
class task_node;

/// Published once by the first cancel request of a scope; immutable afterwards.
struct cancel_request {
  std::string message;
  cancel_origin origin = cancel_origin::user;
  /// The task whose failure caused the request, if any (see `corun::cancelled::culprit`).
  std::string culprit;
};

/// `persistent`: the scope of a `persistent_task_group` (runtime/lifecycle): its children are
/// joined together but do not fail fast, so a child's failure does not cancel its siblings.
enum class scope_kind : std::uint8_t { task, group, root, source, persistent };

/// Somebody to resume: a task (and the coroutine in it to resume) or nobody.
struct resumption {
  task_node* node = nullptr;
  std::coroutine_handle<> handle;
};

class scope_node;

/// What each kind of scope does when its children report to it: `scope_node`'s dispatch table.
/// Hand-made rather than virtual functions: a C++ destructor rewrites the vtable pointer at each
/// level of a polymorphic class, two stores into every coroutine frame as it is destroyed, and
/// the pointer itself would be one more store when it is created.
struct scope_ops {
  void (*adopt_failure)(scope_node& self, std::exception_ptr error, task_node& child) noexcept;
  resumption (*child_completed)(scope_node& self, bool child_failed) noexcept;
  void (*retain_for_report)(scope_node& self);
  void (*release)(scope_node& self) noexcept;
};

/// The table of a concrete scope class, which defines the four operations as members of the
/// same names.
template <class Scope>
inline constexpr scope_ops scope_ops_of{
    [](scope_node& self, std::exception_ptr error, task_node& child) noexcept {
      static_cast<Scope&>(self).adopt_failure(std::move(error), child);
    },
    [](scope_node& self, bool child_failed) noexcept {
      return static_cast<Scope&>(self).child_completed(child_failed);
    },
    [](scope_node& self) { static_cast<Scope&>(self).retain_for_report(); },
    [](scope_node& self) noexcept { static_cast<Scope&>(self).release(); },
};

/// One node of the ownership and cancellation tree: a spawned task, a group, or a runtime's root.
class scope_node {
 public:
  scope_node(scope_kind kind, scope_node* parent, const scope_ops& ops) noexcept
      : m_ops(&ops), m_parent(parent), m_kind(kind) {}
  /// For a task's node: `m_ops` and `m_parent` stay unset until it is spawned
  /// (`task_node::begin_spawned`), as a task that is only awaited never uses them.
  explicit scope_node(scope_kind kind) noexcept : m_kind(kind) {}
  scope_node(const scope_node&) = delete;
  scope_node& operator=(const scope_node&) = delete;

  [[nodiscard]] scope_kind kind() const noexcept { return m_kind; }
  [[nodiscard]] scope_node* parent() const noexcept { return m_parent; }

  /// Requests cancellation of this scope and everything below it; the first request's message is
  /// kept. Returns false if cancellation had already been requested. Thread-safe.
  bool request_cancel(std::string message, cancel_origin origin = cancel_origin::user,
                      std::string culprit = {});
  /// The same from paths that must not fail (completions, shutdown): without memory for the
  /// message, a static request "cancelled (no memory for the reason)" is published instead.
  void request_cancel_nothrow(const char* message,
                              cancel_origin origin = cancel_origin::scope_exit) noexcept;

  /// The published cancel request of this scope itself (not its parents), or null.
  [[nodiscard]] const cancel_request* own_cancel() const noexcept {
    // Acquire: pairs with the release CAS in `request_cancel`, so the message is visible.
    return m_cancel.load(std::memory_order_acquire);
  }

  /// A child ended failed and nobody will observe the failure through its handle. Thread-safe.
  void adopt_failure(std::exception_ptr error, task_node& child) noexcept {
    m_ops->adopt_failure(*this, std::move(error), child);
  }
  /// A child of this scope completed. Called after the child's DONE is published; the child may
  /// already be destroyed. Returns whom to resume; a task parent whose last child this was returns
  /// itself with an empty handle, meaning "complete this task next".
  [[nodiscard]] resumption child_completed(bool child_failed) noexcept {
    return m_ops->child_completed(*this, child_failed);
  }
  /// Keeps the scope alive, and ready to take `adopt_failure`, until `release()`: a child that
  /// failed while a handle to it existed may report the failure later (see the file comment).
  void retain_for_report() { m_ops->retain_for_report(*this); }
  void release() noexcept { m_ops->release(*this); }

  // --- Fields. Public to the runtime's compiled parts and the templates in detail/. ---
  /// The concrete scope's operations (see `scope_ops`); set at construction, or for a task when
  /// it is spawned.
  const scope_ops* m_ops;
  /// The scope this one is a child of; null for a runtime's root. Set before the scope is
  /// published and never changed.
  scope_node* m_parent;
  std::atomic<const cancel_request*> m_cancel{nullptr};
  scope_kind m_kind;
  /// Cancel requests of the parents do not reach past this scope.
  bool m_shield = false;

 protected:
  // Protected and not virtual: every scope is destroyed through its concrete type (a coroutine
  // frame, or `delete this` in a group or root), never through a `scope_node*`.
  ~scope_node() {
    if (const cancel_request* request = m_cancel.load(std::memory_order_relaxed);
        CORUN_UNLIKELY(request != nullptr)) {
      free_cancel_request(request);
    }
  }

 public:
  /// Published by `request_cancel_nothrow` when there is no memory for the message.
  static const cancel_request out_of_memory_request;

 private:
  /// Out of line: every coroutine frame runs the destructor, and inlined there the check against
  /// the static request and the `delete` lengthened every frame's destruction (callgrind, one
  /// worker: fib -0.9% of all instructions).
  static void free_cancel_request(const cancel_request* request) noexcept;
};

enum class task_outcome : std::uint8_t { running, value, error, cancelled };

/// What a suspended task waits for, as `runtime::dump_tasks` shows it (kept only when the
/// runtime tracks tasks).
enum class wait_kind : std::uint8_t {
  none,
  join,      // a task (`task_extras::awaiting`) to complete
  children,  // its own children, after its body ended
  group,     // a group's children: `task_group::join`, `when_all`, `when_any`, `with_task_group`
  start,     // `task_group::start`: the started task (`task_extras::awaiting`) to call `started()`
  yield,
  cancel,
  sleep,    // a timer
  lock,     // async_mutex, async_semaphore
  event,    // async_event
  channel,  // a channel's send or recv
};

struct join_wake;

/// Who waits for a task to complete: a suspended task, or a thread blocked in `get()`.
struct join_waiter {
  /// A joining task, at `handle`, with its cancel wake-up (in its awaiter; registered late for
  /// an INLINE join).
  static join_waiter task(task_node* joiner, std::coroutine_handle<> h, join_wake* w) noexcept {
    join_waiter waiter;
    waiter.node = joiner;
    waiter.handle = h;
    waiter.wake = w;
    return waiter;
  }
  /// A blocked thread, woken through `word`.
  static join_waiter thread(std::atomic<std::uint32_t>* word) noexcept {
    join_waiter waiter;
    waiter.wake_word = word;
    return waiter;
  }

  task_node* node = nullptr;  // null for a blocked thread
  std::coroutine_handle<> handle;
  // One or the other, told apart by `node` (a word less in every task).
  union {
    join_wake* wake = nullptr;              // node != null
    std::atomic<std::uint32_t>* wake_word;  // node == null
  };
};

/// Cold, lazily allocated per-task data: the name and failures adopted from children.
struct task_extras;
/// The task-local values of a task (runtime/scheduler/task_locals.cpp).
struct task_locals;
void release_task_locals(task_locals* locals) noexcept;

/// The state of a spawned task. Every corun promise is a `task_node`; most fields are only used
/// once the task is spawned (`m_rt != nullptr`), and are only set then (see the fields).
class task_node : public scope_node {
 public:
  // `m_state` layout, documented bit by bit:
  //   bit 0      DONE         the task and all its children completed; outcome and result final
  //   bit 1      WAITING      a joiner is registered in `m_waiter`
  //   bit 2      CANCELLABLE  that joiner may also be woken by a cancel callback, which claims it
  //                           by clearing WAITING (so the completer must use an RMW)
  //   bit 3      CANCEL_SEEN  a cancel callback fired before the joiner finished registering:
  //                           the joiner must not suspend (it clears the bit when it resumes)
  //   bit 4      INLINE       the joiner runs this task inline on its own stack and registered
  //                           no cancel wake-up; if the task suspends, it registers one for the
  //                           joiner first (`leave_stack`)
  //   bit 5      DONE_WAITERS tasks wait in the extras' `done_waiters` (`task_handle::wait`); set
  //                           together with one extra reference, which the completer holds
  //                           while it wakes them and then drops (done_waiters.cpp)
  //   bits 6..31 REFS         one for the running body, one per handle (join_handle and every
  //                           task_handle copy), one per child holding a deferred failure
  //                           report, one per cancel_token
  static constexpr std::uint32_t done_bit = 1;
  static constexpr std::uint32_t waiting_bit = 2;
  static constexpr std::uint32_t cancellable_bit = 4;
  static constexpr std::uint32_t cancel_seen_bit = 8;
  static constexpr std::uint32_t inline_bit = 16;
  static constexpr std::uint32_t done_waiters_bit = 32;
  static constexpr std::uint32_t flag_bits = 63;
  static constexpr std::uint32_t one_ref = 64;
  /// `m_pending` starts here so that children completing before the body ends never bring it to
  /// zero; the body then adds `spawned - pending_bias`.
  static constexpr std::int64_t pending_bias = std::int64_t{1} << 48;

  /// Leaves the [spawn] fields below unset (see there).
  task_node() noexcept : scope_node(scope_kind::task) {}

  [[nodiscard]] bool done() const noexcept {
    // Acquire: a reader that sees DONE also sees the outcome and the result.
    return (m_state.load(std::memory_order_acquire) & done_bit) != 0;
  }
  [[nodiscard]] task_outcome outcome() const noexcept { return m_outcome; }
  [[nodiscard]] const std::exception_ptr& error() const noexcept { return m_error; }
  [[nodiscard]] runtime_core* runtime() const noexcept { return m_rt; }
  [[nodiscard]] std::uint64_t id() const noexcept;
  [[nodiscard]] std::string name() const;
  void mark_observed() noexcept { m_observed.store(true, std::memory_order_relaxed); }

  /// Another reference (a handle copy). The caller already holds one, so relaxed is enough.
  void add_ref() noexcept { m_state.fetch_add(one_ref, std::memory_order_relaxed); }

  // The scope operations (scope_ops), called directly on a task or through `scope_node`.
  void adopt_failure(const std::exception_ptr& error, task_node& child) noexcept;
  [[nodiscard]] resumption child_completed(bool child_failed) noexcept;
  void retain_for_report();
  void release() noexcept;

  // --- Fields. Public to the runtime's compiled parts and the templates in detail/. ---
  // Ordered for size: the first three fill the tail padding of `scope_node` (the Itanium ABI
  // reuses a non-POD base's tail padding), the one-byte flags share the last word. Every frame
  // carries a node, so each word saved is a word less to allocate, zero and move on a steal.
  //
  // Set when spawned: the fields marked [spawn] (and the scope part's `m_ops` and `m_parent`)
  // are left unset by the constructor and set by `begin_spawned`, as a task that is
  // only awaited never reads them; a spawn then writes each once, not twice. Those marked
  // [unset] are never set in advance: whoever uses them writes them first. The fields of a type
  // with a constructor sit alone in an anonymous union, whose members a constructor leaves
  // alone. The rest are read before a spawn or by the destructor (marked [always]). A frame's
  // ramp sets 11 words of its node fewer, in 7 stores fewer (callgrind, one worker:
  // fib_awaited -4.8% of all instructions).
  //
  // [always] `m_outcome` and `m_state`: a task group's registry reads them (`done()`,
  // `outcome()`, in its sweep and `size()`) from the moment a child is registered, which is
  // before `begin_spawned`. With `m_threw_cancelled` they share a word with the scope part's
  // `m_kind` and `m_shield`, which the constructor sets anyway: one store sets all five.
  /// Written by the completing thread before DONE is published.
  task_outcome m_outcome = task_outcome::running;
  /// The body ended with exactly `corun::cancelled` (classified without a rethrow).
  bool m_threw_cancelled = false;
  /// See the layout above.
  std::atomic<std::uint32_t> m_state{0};
  /// [spawn] Where to continue when the task is taken from a run queue.
  union {
    std::coroutine_handle<> m_resume;
  };
  /// [always] Null until spawned: the final awaiter tells an awaited task from a spawned one by
  /// it.
  runtime_core* m_rt = nullptr;
  /// [spawn]
  union {
    std::atomic<std::int64_t> m_pending;
  };
  /// [spawn] Children spawned by the body; touched only by the thread running the body.
  std::int64_t m_spawned;
  /// [spawn] Value of `g_cancel_epoch` at which the scope chain was last found uncancelled.
  /// Written by the thread running the task, read (relaxed) by descendants' walks, which stop
  /// at an ancestor that already verified the current epoch.
  union {
    std::atomic<std::uint64_t> m_epoch_seen;
  };
  /// [always] Assigned on first use (see `id()`), so spawning does not touch a shared counter.
  /// A persistent group names its task by the id before spawning it.
  mutable std::atomic<std::uint64_t> m_id{0};
  /// [unset] Written by a joiner before it sets WAITING, and read only under WAITING.
  union {
    join_waiter m_waiter;
  };
  // [unset] A word used twice: a link while runnable, a reference once completed (never both).
  // Each use writes it first.
  union {
    /// Intrusive link for lists of runnable tasks that must not allocate (a worker's overflow).
    task_node* m_next;
    /// Set, with `m_holds_root`, when the task completed failed while a handle existed: a
    /// reference on the runtime's root, where a failure nobody observes is reported even after
    /// the runtime is gone. A completed task is in no run list.
    root_scope* m_held_root;
  };
  /// [always] Named before the spawn; freed by the destructor.
  std::atomic<task_extras*> m_extras{nullptr};
  /// [always] Task-local values; inherited (shared) from the spawner, copied on the first
  /// `set`. Released by the destructor.
  task_locals* m_locals = nullptr;
  /// [always] An awaited task's failure too.
  std::exception_ptr m_error;
  /// [spawn] For `dump_tasks`: what the task waits for (written only when the runtime tracks
  /// tasks, `task_tracker::note_wait`, which keeps the awaited task in the extras; relaxed, read
  /// racily by the dump).
  union {
    std::atomic<std::uint8_t> m_wait;
  };
  /// [spawn] Set when a handle delivered the result (or failure) to somebody.
  union {
    std::atomic<bool> m_observed;
  };
  /// [spawn] Set by the task's join_handle when it took the result (it can be taken once).
  /// Touched only by whoever holds that handle.
  bool m_result_taken;
  /// [spawn] Set when the task completed failed while a handle existed: it holds a reference
  /// on the runtime's root (`m_held_root`) and, memory permitting, on its parent
  /// (`m_holds_parent_ref`) until its last reference goes.
  bool m_holds_root;
  bool m_holds_parent_ref;
  /// [spawn] The parent is a task. Read at completion in place of the parent's kind, whose
  /// line the spawner writes on every spawn (`m_spawned`).
  bool m_parent_is_task;

  /// Sets the [spawn] fields: `child` of `parent`, run from `frame`, with two references (the
  /// body and the handle). Before the task is published.
  void begin_spawned(std::coroutine_handle<> frame, scope_node& parent, bool parent_is_task,
                     runtime_core& rt, std::uint64_t epoch_seen) noexcept {
    m_ops = &scope_ops_of<task_node>;
    m_parent = &parent;
    // Relaxed: the task is published later (a queue push or a lock); a group's registry may
    // read the word meanwhile, hence an atomic store.
    m_state.store(2 * one_ref, std::memory_order_relaxed);
    std::construct_at(&m_resume, frame);
    m_rt = &rt;
    std::construct_at(&m_pending, pending_bias);
    m_spawned = 0;
    // The parent chain was uncancelled at this epoch, and the child's own scope is new.
    std::construct_at(&m_epoch_seen, epoch_seen);
    std::construct_at(&m_wait, std::uint8_t{0});
    std::construct_at(&m_observed, false);
    m_result_taken = false;
    m_holds_root = false;
    m_holds_parent_ref = false;
    m_parent_is_task = parent_is_task;
  }

 protected:
  ~task_node() {
    if (task_extras* extras = m_extras.load(std::memory_order_relaxed)) {
      destroy_extras(extras);
    }
    if (m_locals != nullptr) {
      release_task_locals(m_locals);
    }
  }

 private:
  static void destroy_extras(task_extras* extras) noexcept;
};
// Every frame carries one: growing it moves frames into larger size classes (frame_alloc.hpp).
static_assert(sizeof(task_node) == 144, "task_node grew: check the field order above");

/// Promises that hold a `task_node` are aligned to at most this (checked in promise.hpp).
inline constexpr std::size_t task_promise_align = 2 * sizeof(void*);

/// The coroutine frame a task's node lives in. Every node is the base, at offset 0, of a
/// `task_promise<T>` aligned to at most `task_promise_align`; g++ and clang both place such a
/// promise right after the frame's two function pointers, so the frame is found from the node
/// as `coroutine_handle::from_promise` finds it (the same builtin), without storing it.
[[nodiscard]] inline std::coroutine_handle<> frame_of(task_node& node) noexcept {
  return std::coroutine_handle<>::from_address(
      __builtin_coro_promise(static_cast<void*>(&node), task_promise_align, true));
}

// ---- Cancellation -----------------------------------------------------------------------------

/// Bumped after every cancel request anywhere (release), read relaxed on the hot path. Alone on
/// its cache line: it is read by every worker and written only when something is cancelled.
struct alignas(cache_line) cancel_epoch_cell {
  std::atomic<std::uint64_t> value{0};
};
extern cancel_epoch_cell g_cancel_epoch;

bool cancel_requested_slow(task_node& node) noexcept;

/// True if `node`'s scope or any unshielded ancestor scope was asked to cancel.
[[nodiscard]] inline bool cancel_requested(task_node& node) noexcept {
#if defined(CORUN_BENCH_NO_CANCEL_CHECK)
  // Never set in a real build: the benchmark `fib/corun_no_cancel_check` compiles a private copy
  // of the runtime (in its own namespace) with this, to measure what the check costs fib.
  static_cast<void>(node);
  return false;
#endif
  // Relaxed: a stale epoch only delays noticing a cancel until the next check.
  const std::uint64_t epoch = g_cancel_epoch.value.load(std::memory_order_relaxed);
  if (CORUN_LIKELY(epoch == node.m_epoch_seen.load(std::memory_order_relaxed))) {
    return false;
  }
  return cancel_requested_slow(node);
}

/// The current epoch if `root` (a runtime's root scope) is not cancelled, else 0: what a new root
/// task may start with as its verified epoch.
[[nodiscard]] std::uint64_t clean_epoch_of_root(const scope_node& root) noexcept;

/// The cancel request that applies to `node` (its own or an unshielded ancestor's), or null.
[[nodiscard]] const cancel_request* find_cancel(const task_node& node) noexcept;

/// True if the exception being handled is exactly a `corun::cancelled` (false when unsure: the
/// caller then classifies by rethrowing). Saves a throw per cancelled task.
[[nodiscard]] bool current_exception_is_cancelled() noexcept;
/// True if `catch (const corun::cancelled&)` catches what `error` holds (false for null).
[[nodiscard]] bool holds_cancelled(const std::exception_ptr& error) noexcept;

/// Throws `corun::cancelled` describing the request that applies to `node`.
[[noreturn]] void throw_cancelled(const task_node& node);
/// The `corun::cancelled` that `throw_cancelled` would throw, or nothing if `node` is not
/// cancelled.
[[nodiscard]] std::optional<cancelled> cancellation_of(const task_node& node);

/// Throws what a joiner of the completed `node` must see: its error, or `task_cancelled`.
[[noreturn]] void throw_outcome(task_node& node);

// ---- The thread's current task and bounded symmetric transfer ----------------------------------

/// Per-thread scheduling state.
struct thread_state {
  /// The spawned task whose coroutine is running on this thread (null off the runtime).
  task_node* current;
  /// Symmetric transfers left before the next one is handed to the worker loop: set to
  /// `max_inline_depth` whenever the worker resumes a task from a queue. A countdown, so that
  /// `transfer_to` is one decrement of memory and a branch on zero.
  std::uint32_t transfers_left;
  /// A task whose resumption was deferred because `transfers_left` ran out.
  task_node* bounced;
  /// The worker this thread is (opaque; null on threads that are not workers).
  void* worker;
};
extern constinit thread_local thread_state tl_thread CORUN_HOT_TLS;

/// The calling thread's state. Code a coroutine body may inline uses this, never `tl_thread`
/// itself (see `CORUN_TLS_ACCESSOR`): every call reads the variable of the thread it runs on.
CORUN_TLS_ACCESSOR inline thread_state& this_thread_state() noexcept {
  CORUN_TLS_FENCE();
  return tl_thread;
}

/// g++ 12 does not turn symmetric transfer into a tail call at -O0/-O1 or under sanitizers, so
/// each transfer may nest one more `resume()` on the stack. Past this many transfers without a
/// return to the worker loop, the next resumption is handed to the loop instead.
inline constexpr std::uint32_t max_inline_depth = 64;

/// Symmetric transfer to `h` inside `node`, bounded by `max_inline_depth`.
[[nodiscard]] inline std::coroutine_handle<> transfer_to(task_node* node,
                                                         std::coroutine_handle<> h) noexcept {
  thread_state& ts = this_thread_state();
  ts.current = node;
  if (CORUN_LIKELY(--ts.transfers_left != 0)) {
    return h;
  }
  node->m_resume = h;
  ts.bounced = node;
  return std::noop_coroutine();
}

// ---- Spawn and join (runtime/scheduler/task_lifecycle.cpp)
// ---------------------------------------

/// Links `child` under `parent` (the task running on this thread) and schedules it. Cannot fail.
void spawn_child(task_node& child, std::coroutine_handle<> frame, task_node& parent) noexcept;
/// Gives a task about to be spawned its name.
void name_task(task_node& child, std::string name);
/// The completion protocol, run from the final suspend point of a spawned task.
[[nodiscard]] std::coroutine_handle<> finish_spawned(task_node& node) noexcept;
/// The cancel wake-up of a join that suspended: fired when the joiner is cancelled, it claims the
/// joiner from the joined task's state word (clearing WAITING) unless the task completed first,
/// and schedules it; the joiner then sees `cancelled`. Lives in the join awaiter.
struct join_wake : cancel_registration {
  // Built on every join's `co_await`: the fields without initialisers are written only when the
  // join suspends (join_suspend, leave_stack: `arm`), before anything reads them.
  join_wake() noexcept : cancel_registration(unarmed_t{}) {}
  /// Before registering. The joiner and where it resumes are not kept here: `joined` holds
  /// them in its `m_waiter`, written before this registration and unchanged while it lasts.
  void arm(task_node* joined, task_node* joining) noexcept {
    scope = joining;
    invoke = &fire;
    m_kind = kind::waker;
    m_owner_data = joined;
  }
  [[nodiscard]] task_node& joinee() const noexcept {
    return *static_cast<task_node*>(m_owner_data);
  }
  /// `leave_stack` only, before registering: the wake-up one level down the chain of inline
  /// joins.
  [[nodiscard]] join_wake* below() const noexcept { return static_cast<join_wake*>(m_owner_link); }
  void set_below(join_wake* wake) noexcept { m_owner_link = wake; }
  // The flags live in the tail padding of cancel_registration.
  /// The joined task's completion resumed the joiner (then it relied on it, see
  /// `joined_while_waiting`). Written before the joiner registers, or by whoever wakes it.
  bool registered = false;
  /// False for a join that must not be interrupted by the joiner's cancellation (`shield`).
  bool wake_on_cancel = true;
  /// The join left nothing to undo, so `join_handle`'s `await_resume` only takes the result:
  /// set when its `await_ready` found the task done (the join neither suspended nor registered
  /// anything), or by `complete_inline_joined` (task_lifecycle.cpp), which completed the task
  /// on the joiner's stack, where nothing was registered, and already took it off the joiner's
  /// owner count (`joined_while_waiting`).
  bool straight_to_result = false;
  static void fire(cancel_registration& r) noexcept;
};
// In the frame of every task that awaits a join_handle.
static_assert(sizeof(join_wake) == 56, "join_wake grew: check the field order");

/// Registers the calling task (`waiter`, suspended at `h`) as the joiner of `node` and returns
/// what to run next: `node` itself if it was still waiting at the bottom of this worker's deque
/// (it runs inline and resumes the joiner when done), `h` if `node` completed meanwhile or the
/// joiner is already cancelled, else nothing (back to the worker loop). `wake.registered` is
/// written before registering, as nothing in the joiner's frame may be touched after. A join
/// that suspends registers `wake`, so that a cancel request wakes the joiner; an inline join
/// registers it only if `node` leaves the stack (`leave_stack`).
[[nodiscard]] std::coroutine_handle<> join_suspend(task_node& node, task_node* waiter,
                                                   std::coroutine_handle<> h,
                                                   join_wake& wake) noexcept;
/// Called by a task about to suspend (or to wait for its children) off the worker's stack: if
/// it, and maybe its joiner and so on, were being joined inline, registers the joiners' cancel
/// wake-ups now, from the top of the chain down.
void leave_stack(task_node& self) noexcept;
/// A cancel wake-up that simply schedules a suspended task (awaitables whose only way out is
/// cancellation, such as `this_task::sleep_forever`).
struct task_wake : cancel_registration {
  task_wake() noexcept : cancel_registration(nullptr, &fire, kind::waker) {}
  task_node* task;  // set with `handle` before registering
  std::coroutine_handle<> handle;
  static void fire(cancel_registration& r) noexcept;
};
/// Registers `wake` for the running task, suspended at `h`. False if the task is already
/// cancelled (then it must not suspend).
[[nodiscard]] bool suspend_until_cancelled(task_wake& wake, std::coroutine_handle<> h) noexcept;

/// The joiner resumed: removes its cancel wake-up (waiting for a callback in flight).
void join_resumed(task_node& node, join_wake& wake) noexcept;
/// The parent was the registered joiner of its child `node` when it completed; the child then
/// did not count itself off the parent's pending counter, so the parent forgets it here.
inline void joined_while_waiting(const task_node& node, task_node& self) noexcept {
  if (node.m_parent == &self) {
    --self.m_spawned;
  }
}
/// The task runs again: nothing to show in a dump any more.
inline void clear_wait(task_node& self) noexcept {
  // Relaxed: only dumps read it; skip the store when there is nothing to clear.
  if (CORUN_UNLIKELY(self.m_wait.load(std::memory_order_relaxed) != 0)) {
    self.m_wait.store(0, std::memory_order_relaxed);
  }
}
/// Blocks the calling (non-worker) thread until `node` completes.
void join_blocking(task_node& node);
/// Drops one reference; the last one destroys the frame (reporting an unobserved failure).
void release_ref(task_node& node) noexcept;
/// Queues the current task behind other runnable work on this worker.
void yield_current(std::coroutine_handle<> h);

/// Destroys a released frame unless dismissed: a spawn that fails before publishing the task.
class frame_guard {
 public:
  explicit frame_guard(std::coroutine_handle<> frame) noexcept : m_frame(frame) {}
  frame_guard(const frame_guard&) = delete;
  frame_guard& operator=(const frame_guard&) = delete;
  ~frame_guard() {
    if (m_frame) {
      m_frame.destroy();
    }
  }
  void dismiss() noexcept { m_frame = {}; }

 private:
  std::coroutine_handle<> m_frame;
};

}  // namespace corun::detail
