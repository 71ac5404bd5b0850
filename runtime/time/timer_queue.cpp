// The timer queue (runtime/time/timer_queue.hpp).
//
//  1. Arming pushes the entry on the heap under the lock and republishes the earliest deadline
//     (`m_next`), which workers read without the lock to decide whether to look.
//  2. Firing takes every due entry off the heap under the lock, marks it `firing` and links it
//     into a local list; after unlocking it runs each entry's `fire` and then stores `done`
//     (release). Fire functions thus never run under the lock (they schedule tasks and may
//     request cancellation, which takes the cancel registry's locks).
//  3. Disarming removes a queued entry under the lock. An entry already taken for firing is
//     waited for until `done` (acquire), so the owner may free it as soon as disarm returns.
#include "time/timer_queue.hpp"

#include <algorithm>
#include <mutex>
#include <thread>

namespace corun::detail {

namespace {
constexpr std::size_t arity = 4;

std::int64_t ticks(clock_time t) noexcept { return t.time_since_epoch().count(); }
}  // namespace

timer_queue::timer_queue(bool virtual_time) : m_virtual(virtual_time) {
  // Relaxed: set before the runtime's workers start.
  m_virtual_now.store(ticks(std::chrono::steady_clock::now()), std::memory_order_relaxed);
}

clock_time timer_queue::now() const noexcept {
  if (m_virtual) {
    // Relaxed: see the field's comment.
    return clock_time(clock_time::duration(m_virtual_now.load(std::memory_order_relaxed)));
  }
  return std::chrono::steady_clock::now();
}

bool timer_queue::arm(timer_entry& e, clock_time deadline) {
  const std::lock_guard lock(m_lock);
  return arm_locked(e, deadline);
}

bool timer_queue::arm_locked(timer_entry& e, clock_time deadline) {
  const slot armed{ticks(deadline), m_seq, &e};
  m_heap.push_back(armed);  // may throw; nothing changed yet
  ++m_seq;
  // Relaxed: read under this lock, or by the owner that armed it.
  e.m_phase.store(timer_entry::phase::queued, std::memory_order_relaxed);
  place(armed, m_heap.size() - 1);
  sift_up(e.heap_index);
  if (e.heap_index != 0) {
    return false;
  }
  publish_next();
  return true;
}

bool timer_queue::disarm(timer_entry& e) noexcept {
  {
    const std::lock_guard lock(m_lock);
    // Acquire, although under the lock: `done` is stored after the firing thread unlocked.
    const timer_entry::phase phase = e.m_phase.load(std::memory_order_acquire);
    if (phase == timer_entry::phase::idle) {
      return false;
    }
    if (phase == timer_entry::phase::queued) {
      remove_at(e.heap_index);
      e.m_phase.store(timer_entry::phase::idle, std::memory_order_relaxed);
      return false;
    }
    if (phase == timer_entry::phase::done) {
      return true;
    }
  }
  // Acquire: pairs with the release store after `fire` returned (step 3).
  while (e.m_phase.load(std::memory_order_acquire) != timer_entry::phase::done) {
    std::this_thread::yield();
  }
  return true;
}

std::size_t timer_queue::fire_due() noexcept {
  timer_entry* due = nullptr;
  timer_entry** tail = &due;
  std::size_t count = 0;
  {
    const std::lock_guard lock(m_lock);
    const std::int64_t now_ticks = ticks(now());
    while (!m_heap.empty() && m_heap.front().deadline <= now_ticks) {
      timer_entry& e = *m_heap.front().entry;
      remove_at(0);
      e.m_phase.store(timer_entry::phase::firing, std::memory_order_relaxed);
      e.next_due = nullptr;
      *tail = &e;
      tail = &e.next_due;
      ++count;
    }
  }
  while (due != nullptr) {
    timer_entry& e = *due;
    due = e.next_due;  // read before `done`: the owner may free the entry right after
    e.fire(e);
    // Release: `fire`'s effects happen before a waiting disarm returns.
    e.m_phase.store(timer_entry::phase::done, std::memory_order_release);
  }
  return count;
}

void timer_queue::advance(std::chrono::nanoseconds d) noexcept {
  if (d.count() <= 0) {
    return;
  }
  std::int64_t current = m_virtual_now.load(std::memory_order_relaxed);
  std::int64_t target = 0;
  do {
    // Saturate below `empty_mark`: the clock never wraps, and never reaches "no deadline".
    target = d.count() < empty_mark - 1 - current ? current + d.count() : empty_mark - 1;
    // Relaxed: see the field's comment.
  } while (!m_virtual_now.compare_exchange_weak(current, target, std::memory_order_relaxed,
                                                std::memory_order_relaxed));
}

bool timer_queue::advance_to_next() noexcept {
  const std::int64_t next = m_next.load(std::memory_order_seq_cst);
  if (next == empty_mark) {
    return false;
  }
  std::int64_t current = m_virtual_now.load(std::memory_order_relaxed);
  // Relaxed: time only moves forward; a concurrent `advance` past `next` wins.
  while (current < next &&
         !m_virtual_now.compare_exchange_weak(current, next, std::memory_order_relaxed,
                                              std::memory_order_relaxed)) {
  }
  return true;
}

void timer_queue::sift_up(std::size_t index) noexcept {
  const slot moving = m_heap[index];
  while (index > 0) {
    const std::size_t parent = (index - 1) / arity;
    if (!earlier(moving, m_heap[parent])) {
      break;
    }
    place(m_heap[parent], index);
    index = parent;
  }
  place(moving, index);
}

void timer_queue::sift_down(std::size_t index) noexcept {
  const slot moving = m_heap[index];
  const std::size_t size = m_heap.size();
  for (;;) {
    const std::size_t first = index * arity + 1;
    if (first >= size) {
      break;
    }
    std::size_t best = first;
    const std::size_t last = std::min(first + arity, size);
    for (std::size_t child = first + 1; child < last; ++child) {
      if (earlier(m_heap[child], m_heap[best])) {
        best = child;
      }
    }
    if (!earlier(m_heap[best], moving)) {
      break;
    }
    place(m_heap[best], index);
    index = best;
  }
  place(moving, index);
}

void timer_queue::remove_at(std::size_t index) noexcept {
  const timer_entry* old_front = m_heap.front().entry;
  m_heap[index].entry->heap_index = timer_entry::not_queued;
  const slot last = m_heap.back();
  m_heap.pop_back();
  if (index < m_heap.size()) {
    place(last, index);
    // The moved slot may belong above or below its new place.
    if (index > 0 && earlier(last, m_heap[(index - 1) / arity])) {
      sift_up(index);
    } else {
      sift_down(index);
    }
  }
  if (m_heap.empty() || m_heap.front().entry != old_front) {
    publish_next();
  }
}

void timer_queue::publish_next() noexcept {
  // seq_cst: the queue side of the handshake with a parking timer server (runtime_core).
  m_next.store(m_heap.empty() ? empty_mark : m_heap.front().deadline, std::memory_order_seq_cst);
}

}  // namespace corun::detail
