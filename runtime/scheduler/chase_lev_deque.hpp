/// \file
/// The per-worker work-stealing deque.
///
/// Algorithm: Chase and Lev, "Dynamic Circular Work-Stealing Deque" (SPAA 2005), in the C11
/// formulation of Lê, Pop, Cohen and Zappa Nardelli, "Correct and Efficient Work-Stealing for
/// Weak Memory Models" (PPoPP 2013), with one change: the two `atomic_thread_fence(seq_cst)` are
/// replaced by seq_cst operations on the indices themselves (an exchange of `bottom` in `pop`,
/// seq_cst loads in `steal`). clang emits `mfence` for the fence (+15 ns per pop on our EPYC
/// machines) and TSan cannot model fences; the locked exchange costs less and TSan sees it.
/// Why it is enough: every access that the proof orders through the fences is now itself in the
/// single total order S of seq_cst operations, so "pop read a stale top" implies "steal reads the
/// decremented bottom" (pop's exchange precedes its top load in S, which precedes the CAS that
/// advanced top, which precedes the thief's loads).
///
/// Encoding: `top` and `bottom` are ever-increasing 64-bit indices; the items are the slots
/// [top, bottom) of a power-of-two ring. The ring doubles when full; old rings are kept until the
/// deque dies because a thief may still read from one (it then fails its CAS and retries).
///
/// Solo pops. The owner may pass `pop` a predicate `no_thieves`, asked after bottom was
/// decremented with a plain store: if it answers true, the pop skips the locked exchange. It may
/// answer true only if every thief that could still read the old bottom will first pass a
/// barrier that orders it after our store: the worker answers "every other worker is parked",
/// and a worker that leaves its park runs the heavy side of the asymmetric barrier before it
/// steals (worker.cpp). This is the light push's asymmetric Dekker again, on the pop side: with
/// every other worker asleep (and always on a one-worker runtime) a pop costs no locked
/// instruction. tests/model/deque_model.cpp checks it with the barrier and catches it without.
///
/// Soft limit. The owner may also ask `try_push_under_soft_limit` to refuse while the deque
/// holds a given number of items (the spawn path's work-first check, worker.cpp): it compares
/// with the smaller of that limit and the capacity, so one comparison serves both checks.
///
/// THREAD SAFETY: `push` and `pop` are called only by the owning worker; `steal` and
/// `maybe_nonempty` by any thread.
#pragma once

#include "corun/detail/config.hpp"

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

namespace corun::detail {

/// `Atomic` is `std::atomic` except in the model checks (tests/model/), which substitute a shim.
template <class T, template <class> class Atomic = std::atomic>
  requires std::is_pointer_v<T>
class chase_lev_deque {
 public:
  /// The default `no_thieves` of `pop`: always take the locked exchange.
  struct never_solo {
    constexpr bool operator()() const noexcept { return false; }
  };

  /// `light_push`: the caller orders its pushes before later loads itself (asymmetric_barrier.hpp)
  /// so `push` may publish with a plain release store.
  explicit chase_lev_deque(bool light_push, std::int64_t initial_capacity = 1024)
      : m_light_push(light_push) {
    m_rings.push_back(std::make_unique<ring>(initial_capacity));
    m_ring.store(m_rings.back().get(), std::memory_order_relaxed);
    update_push_limit();
  }
  chase_lev_deque(const chase_lev_deque&) = delete;
  chase_lev_deque& operator=(const chase_lev_deque&) = delete;

  /// Owner: adds `item` at the bottom, growing the ring if it is full (which may throw
  /// `std::bad_alloc`; the deque is then unchanged).
  void push(T item) {
    if (!try_push(item)) {
      const std::int64_t b = m_bottom.load(std::memory_order_relaxed);
      grow(m_ring.load(std::memory_order_relaxed), m_top_seen, b);
      static_cast<void>(try_push(item));  // cannot fail: the ring has room now
    }
  }

  /// Owner: adds `item` at the bottom unless the ring is full; never allocates. Unless
  /// `light_push`, a seq_cst exchange both publishes the slot to thieves (release) and orders the
  /// push before the caller's seq_cst load of the idle state, so a worker going to sleep either
  /// sees this item or is seen by the pusher (idle.hpp).
  [[nodiscard]] bool try_push(T item) noexcept {
    const std::int64_t b = m_bottom.load(std::memory_order_relaxed);
    ring* r = m_ring.load(std::memory_order_relaxed);
    if (CORUN_UNLIKELY(b - m_top_seen > r->mask)) {
      // The ring looks full by the last top we read: read it again. Acquire: pairs with the
      // thieves' CAS on top, so their reads of the slots we may now reuse happened before our
      // writes. A stale `m_top_seen` is only ever too low (top grows), so it can make the ring
      // look fuller than it is, never let us overwrite a slot a thief may still take; and the
      // push no longer reads the line thieves write on every steal.
      m_top_seen = m_top.load(std::memory_order_acquire);
      if (b - m_top_seen > r->mask) {
        return false;
      }
    }
    publish(b, r, item);
    return true;
  }

  /// Owner: `try_push`, except that it also refuses while the deque looks to hold `soft_limit`
  /// items or more by the last top we read (see `set_soft_limit`). One comparison covers both
  /// limits, so the spawn path's check for a deep deque costs its push nothing.
  [[nodiscard]] bool try_push_under_soft_limit(T item) noexcept {
    const std::int64_t b = m_bottom.load(std::memory_order_relaxed);
    if (CORUN_UNLIKELY(b - m_top_seen >= m_push_limit)) {
      return false;
    }
    publish(b, m_ring.load(std::memory_order_relaxed), item);
    return true;
  }

  /// Owner: where `try_push_under_soft_limit` refuses; 0 means only when the ring is full.
  void set_soft_limit(std::int64_t soft_limit) noexcept {
    m_soft_limit = soft_limit > 0 ? soft_limit : std::numeric_limits<std::int64_t>::max();
    update_push_limit();
  }

  /// Owner: true if the deque holds at least `n` items. It reads top afresh, then trusts that
  /// reading for the next `stale_checks` calls until `forget_depth`: a spawn storm asks on
  /// every spawn, and reading top each time would pull the line that thieves write on every
  /// steal. A stale top is too low, so the answer may stay "deep" for those calls after
  /// thieves emptied the deque; the worker calls `forget_depth` when a thief says it is
  /// hungry (worker.cpp, "Work-first spawns", rule d), which is what lets the credit be long.
  /// Two-worker spawn storm, five interleaved rounds: 23.3 ns per task at 31, 19.4 at 127,
  /// 18.6 at 1023 (fib and skynet 3-5% slower there, within the noise at 127); 29.4 at 7 and
  /// 31.1 reading afresh every time.
  [[nodiscard]] bool holds_at_least(std::int64_t n) noexcept {
    constexpr std::uint32_t stale_checks = 127;
    const std::int64_t b = m_bottom.load(std::memory_order_relaxed);
    if (m_deep_credit > 0) {
      --m_deep_credit;
      return b - m_top_seen >= n;
    }
    // Acquire: as in `try_push` (the value also serves its full-ring check).
    m_top_seen = m_top.load(std::memory_order_acquire);
    if (b - m_top_seen >= n) {
      m_deep_credit = stale_checks;
      return true;
    }
    return false;
  }
  /// Owner: the next `holds_at_least` reads top afresh.
  void forget_depth() noexcept { m_deep_credit = 0; }

  /// Owner: takes the most recently pushed item, or null. `no_thieves` (see "Solo pops") may
  /// spare the locked exchange.
  template <class NoThieves = never_solo>
  [[nodiscard]] T pop(NoThieves no_thieves = {}) {
    const std::int64_t b = m_bottom.load(std::memory_order_relaxed);
    // Relaxed peek: top only grows, so a stale top equal to bottom still proves emptiness. Saves
    // the locked exchange when idle workers poll.
    if (b == m_top.load(std::memory_order_relaxed)) {
      return nullptr;
    }
    if (!claim_bottom(b - 1, no_thieves)) {
      return nullptr;
    }
    // Relaxed: only the owner writes slots; a claimed slot stays ours until we push again.
    return m_ring.load(std::memory_order_relaxed)->get(b - 1);
  }

  /// Owner: pops the bottom item only if it is `expected`. Reading our own bottom slot needs no
  /// synchronisation: only the owner writes slots and bottom.
  template <class NoThieves = never_solo>
  [[nodiscard]] bool pop_if_bottom(T expected, NoThieves no_thieves = {}) {
    const std::int64_t b = m_bottom.load(std::memory_order_relaxed);
    ring* r = m_ring.load(std::memory_order_relaxed);
    if (b == m_top.load(std::memory_order_relaxed) || r->get(b - 1) != expected) {
      return false;
    }
    // The slot holds `expected` whoever wins it: no second read of the slot.
    return claim_bottom(b - 1, no_thieves);
  }

  /// Any thread: takes the oldest item, or null if empty or lost a race (callers move on).
  [[nodiscard]] T steal() {
    // seq_cst loads in place of "load top; fence(seq_cst); load bottom" (see the file comment).
    std::int64_t t = m_top.load(std::memory_order_seq_cst);
    const std::int64_t b = m_bottom.load(std::memory_order_seq_cst);
    if (t >= b) {
      return nullptr;
    }
    // Acquire: the ring's slots were written before it was published.
    ring* r = m_ring.load(std::memory_order_acquire);
    T item = r->get(t);
    // seq_cst: orders the claim against the owner's pop of the last item.
    if (!m_top.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                       std::memory_order_relaxed)) {
      return nullptr;
    }
    return item;
  }

  /// Any thread: how many items the deque held at some recent moment (a hint for batch steals).
  [[nodiscard]] std::int64_t size_hint() const noexcept {
    // Relaxed: a hint; the steals that act on it synchronise themselves.
    const std::int64_t size =
        m_bottom.load(std::memory_order_relaxed) - m_top.load(std::memory_order_relaxed);
    return size > 0 ? size : 0;
  }

  /// Any thread: true if the deque looked non-empty. seq_cst so that a worker about to sleep,
  /// which has just changed the idle state with a seq_cst RMW, sees every completed push.
  [[nodiscard]] bool maybe_nonempty() const noexcept {
    const std::int64_t b = m_bottom.load(std::memory_order_seq_cst);
    return b > m_top.load(std::memory_order_seq_cst);
  }

 private:
  /// The solo half of `pop`: publishes the decremented bottom with a plain store and asks the
  /// predicate. The signal fence keeps the compiler from moving the predicate's load above the
  /// store; the hardware side is the thieves' asymmetric barrier (see "Solo pops").
  template <class NoThieves>
  [[nodiscard]] bool solo(std::int64_t b, NoThieves& no_thieves) {
    if constexpr (std::is_same_v<NoThieves, never_solo>) {
      return false;
    } else {
      // Relaxed: only the owner writes bottom; thieves that matter are ordered by the barrier.
      m_bottom.store(b, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      return no_thieves();
    }
  }

  struct ring {
    explicit ring(std::int64_t capacity)
        : mask(capacity - 1), slots(std::make_unique<Atomic<T>[]>(capacity)) {}
    // Slots are relaxed atomics: a thief may read a slot the owner is rewriting; it then fails
    // its CAS and discards what it read.
    void put(std::int64_t i, T item) noexcept {
      slots[i & mask].store(item, std::memory_order_relaxed);
    }
    [[nodiscard]] T get(std::int64_t i) const noexcept {
      return slots[i & mask].load(std::memory_order_relaxed);
    }
    std::int64_t mask;
    std::unique_ptr<Atomic<T>[]> slots;
  };

  /// The pop proper, once the owner saw the deque non-empty: `b` is the decremented bottom
  /// (the index of the item to take). True if the item at `b` is now ours; false if thieves took
  /// it (bottom is then restored).
  template <class NoThieves>
  [[nodiscard]] bool claim_bottom(std::int64_t b, NoThieves& no_thieves) {
    std::int64_t t = 0;
    if (solo(b, no_thieves)) {
      // Acquire: a thief that stole before it parked published its CAS on top; the predicate's
      // acquire of the idle state made that CAS happen before this load.
      t = m_top.load(std::memory_order_acquire);
    } else {
      // seq_cst exchange in place of "store; fence(seq_cst)": the decrement must precede our
      // read of top in S, so a thief and this pop cannot both take the last item.
      m_bottom.exchange(b, std::memory_order_seq_cst);
      t = m_top.load(std::memory_order_seq_cst);
    }
    if (t > b) {
      m_bottom.store(b + 1, std::memory_order_relaxed);
      return false;
    }
    if (t == b) {
      // The last item: race the thieves for it through top.
      const bool won = m_top.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                                     std::memory_order_relaxed);
      m_bottom.store(b + 1, std::memory_order_relaxed);
      return won;
    }
    return true;
  }

  ring* grow(ring* old, std::int64_t t, std::int64_t b) {
    auto bigger = std::make_unique<ring>((old->mask + 1) * 2);
    for (std::int64_t i = t; i < b; ++i) {
      bigger->put(i, old->get(i));
    }
    ring* fresh = bigger.get();
    m_rings.push_back(std::move(bigger));
    // Release: thieves that load the new ring see the copied slots.
    m_ring.store(fresh, std::memory_order_release);
    update_push_limit();
    return fresh;
  }

  /// Publishes `item` in slot `b` of `r`, which the caller checked is free.
  void publish(std::int64_t b, ring* r, T item) noexcept {
    r->put(b, item);
    if (m_light_push) {
      // Release: publishes the slot to thieves that acquire bottom.
      m_bottom.store(b + 1, std::memory_order_release);
    } else {
      m_bottom.exchange(b + 1, std::memory_order_seq_cst);
    }
  }

  void update_push_limit() noexcept {
    const std::int64_t capacity = m_ring.load(std::memory_order_relaxed)->mask + 1;
    m_push_limit = m_soft_limit < capacity ? m_soft_limit : capacity;
  }

  alignas(cache_line) Atomic<std::int64_t> m_top{0};
  alignas(cache_line) Atomic<std::int64_t> m_bottom{0};
  Atomic<ring*> m_ring{nullptr};
  /// Owner only: a value of top read earlier (a lower bound of it), see `try_push`.
  std::int64_t m_top_seen = 0;
  /// Owner only: `set_soft_limit`'s value (the largest int64 for none), and the smaller of it and
  /// the ring's capacity, which `try_push_under_soft_limit` compares with.
  std::int64_t m_soft_limit = std::numeric_limits<std::int64_t>::max();
  std::int64_t m_push_limit = 0;
  /// Owner only: calls of `holds_at_least` left that trust `m_top_seen` without reading top.
  std::uint32_t m_deep_credit = 0;
  std::vector<std::unique_ptr<ring>> m_rings;  // owner only: the current ring and retired ones
  const bool m_light_push;
};

}  // namespace corun::detail
