/// \file
/// `bench::timers::timing_wheel`: a hierarchical timing wheel, used only by the
/// `timer_structure` benchmark (structure.cpp) to measure the runtime's timer heap against the
/// structure it was chosen over. Not part of the runtime.
///
/// The algorithm is Varghese and Lauck's hierarchical wheel ("Hashed and hierarchical timing
/// wheels", SOSP 1987) in the layout tokio uses (tokio/src/runtime/time/wheel): 6 levels of 64
/// slots, level `l` slot covering 64^l ticks, so 6 levels reach 2^36 ticks ahead. Each slot is an
/// intrusive doubly linked list, each level keeps a 64-bit occupancy mask, so finding the next
/// slot to expire is a rotate and a count of trailing zeros. Deadlines farther ahead than that
/// (which tokio parks in the top level and re-arms) are not supported: the benchmark's lie within
/// seconds.
///
///  1. Arming an entry that expires at tick `t` (rounded up from its deadline, so it never fires
///     early) puts it on the lowest level where `t` and the current tick differ only in that
///     level's 6 bits or below: level = (index of the highest bit of `now ^ t`) / 6.
///  2. Cancelling unlinks it: O(1).
///  3. Advancing to tick `n` repeatedly takes the earliest occupied slot (the lowest level that has
///     one: its entries lie in the current 64^(l+1) block, before anything above), moves the
///     clock to that slot's first tick and empties it: entries that expire there are due,
///     the others are armed again relative to the new clock, which puts them on a lower level
///     (a cascade). Every entry is thus handled at most once per level on its way down. The due
///     entries are handed back as a list, for the caller to fire outside its lock.
///
/// Entries in one level-0 slot (one tick) come due in no particular order: the wheel's order is
/// exact only to a tick, unlike the heap's (deadline, arming order).
///
/// THREAD SAFETY: none; the benchmark wraps it in the runtime's `spin_lock` as the heap is.
#pragma once

#include <array>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>

namespace bench::timers {

/// One timer of a `timing_wheel`, embedded in whatever waits for it (as `timer_entry` is).
struct wheel_entry {
  using fire_fn = void (*)(wheel_entry&) noexcept;

  explicit wheel_entry(fire_fn fn) noexcept : fire(fn) {}
  wheel_entry(const wheel_entry&) = delete;
  wheel_entry& operator=(const wheel_entry&) = delete;
  ~wheel_entry() = default;

  fire_fn fire;
  // --- Owned by the wheel. ---
  std::uint64_t expiry = 0;  ///< in ticks
  wheel_entry* prev = nullptr;
  wheel_entry* next = nullptr;
  std::uint8_t level = 0;
  std::uint8_t slot = 0;
  bool queued = false;
};

class timing_wheel {
 public:
  static constexpr unsigned slot_bits = 6;
  static constexpr std::size_t slots = std::size_t{1} << slot_bits;
  static constexpr unsigned levels = 6;
  /// How far ahead of `now()` an entry may expire: 2^36 ticks.
  static constexpr std::uint64_t max_ahead = std::uint64_t{1} << (slot_bits * levels);

  /// The clock in ticks; starts at 0.
  [[nodiscard]] std::uint64_t now() const noexcept { return m_now; }

  /// Step 1. False if `expiry` is not after `now()`: the entry is due, the caller fires it.
  /// `expiry - now()` must be below `max_ahead`.
  [[nodiscard]] bool arm(wheel_entry& e, std::uint64_t expiry) noexcept {
    e.expiry = expiry;
    if (expiry <= m_now) {
      return false;
    }
    assert(expiry - m_now < max_ahead && "timing_wheel: deadline beyond the top level");
    place(e);
    return true;
  }

  /// Step 2. Does nothing to an entry that is not queued (it fired, or was never armed).
  void cancel(wheel_entry& e) noexcept {
    if (e.queued) {
      unlink(e);
    }
  }

  /// Step 3: takes every entry that expires at or before `target` out of the wheel, then sets
  /// the clock to it. Returns them linked through `next`, in the order they came due (by tick;
  /// within a tick in no particular order); the caller fires them, as the runtime fires its
  /// timers after unlocking the queue.
  [[nodiscard]] wheel_entry* advance(std::uint64_t target) noexcept {
    wheel_entry* due = nullptr;
    wheel_entry** tail = &due;
    for (;;) {
      unsigned level = 0;
      std::uint64_t start = 0;
      if (!next_expiring_slot(level, start) || start > target) {
        break;
      }
      m_now = start;
      const std::size_t slot = slot_of(start, level);
      wheel_entry* e = m_heads[level][slot];
      m_heads[level][slot] = nullptr;
      m_occupied[level] &= ~(std::uint64_t{1} << slot);
      while (e != nullptr) {
        wheel_entry* next = e->next;
        e->queued = false;
        if (e->expiry <= m_now) {
          *tail = e;
          tail = &e->next;
        } else {
          place(*e);  // a cascade: to a lower level
        }
        e = next;
      }
    }
    *tail = nullptr;
    if (target > m_now) {
      m_now = target;
    }
    return due;
  }

 private:
  [[nodiscard]] static std::size_t slot_of(std::uint64_t tick, unsigned level) noexcept {
    return static_cast<std::size_t>((tick >> (slot_bits * level)) & (slots - 1));
  }

  void place(wheel_entry& e) noexcept {
    const unsigned highest =
        63U - static_cast<unsigned>(std::countl_zero((m_now ^ e.expiry) | std::uint64_t{1}));
    const unsigned level = highest / slot_bits;
    const std::size_t slot = slot_of(e.expiry, level);
    e.level = static_cast<std::uint8_t>(level);
    e.slot = static_cast<std::uint8_t>(slot);
    e.queued = true;
    e.prev = nullptr;
    e.next = m_heads[level][slot];
    if (e.next != nullptr) {
      e.next->prev = &e;
    }
    m_heads[level][slot] = &e;
    m_occupied[level] |= std::uint64_t{1} << slot;
  }

  void unlink(wheel_entry& e) noexcept {
    if (e.prev != nullptr) {
      e.prev->next = e.next;
    } else {
      m_heads[e.level][e.slot] = e.next;
      if (e.next == nullptr) {
        m_occupied[e.level] &= ~(std::uint64_t{1} << e.slot);
      }
    }
    if (e.next != nullptr) {
      e.next->prev = e.prev;
    }
    e.queued = false;
  }

  /// The lowest level with an occupied slot and the first tick of its next occupied slot. Every
  /// queued entry's slot starts after `now()` within the level's current turn (an entry is
  /// placed in the turn that holds `now()`, and `advance` empties each slot it passes), so the
  /// next occupied slot is the first one found rotating forward from the current one.
  [[nodiscard]] bool next_expiring_slot(unsigned& level, std::uint64_t& start) const noexcept {
    for (unsigned l = 0; l < levels; ++l) {
      if (m_occupied[l] == 0) {
        continue;
      }
      const unsigned shift = slot_bits * l;
      const auto current = static_cast<int>(slot_of(m_now, l));
      const auto ahead =
          static_cast<std::uint64_t>(std::countr_zero(std::rotr(m_occupied[l], current)));
      const std::uint64_t turn = std::uint64_t{1} << (shift + slot_bits);
      start = (m_now & ~(turn - 1)) + ((static_cast<std::uint64_t>(current) + ahead) << shift);
      level = l;
      return true;
    }
    return false;
  }

  std::uint64_t m_now = 0;
  std::array<std::uint64_t, levels> m_occupied{};
  std::array<std::array<wheel_entry*, slots>, levels> m_heads{};
};

}  // namespace bench::timers
