// Model check of the real work-stealing deque (runtime/scheduler/chase_lev_deque.hpp) under
// Relacy: the deque is instantiated with `rl_atomic` instead of `std::atomic`, so every access to
// top, bottom, the ring pointer and the slots is explored with all the reorderings the C++ memory
// model allows for its memory order.
//
// Every scenario runs with both push modes: the seq_cst exchange and the "light" release store.
// The light push is only safe for the park protocol together with the asymmetric barrier, but the
// deque's own pop/steal correctness must not depend on which one is used.
//
// The solo pops ("Solo pops" in chase_lev_deque.hpp) get scenarios of their own: the owner pops
// with a predicate that answers "no thief is awake" from a counter of awake thieves; a thief
// that wakes counts itself, runs the thieves' side of the asymmetric barrier, steals, and parks
// again. The membarrier is modelled by what it guarantees, as in park_model.cpp: a seq_cst fence
// in the owner between its store of bottom and its load of the counter, paired with a seq_cst
// fence in the thief after it counted itself. Without the barrier the scenario must fail.
//
// Checked in every execution:
//  - each item is taken exactly once (no loss: after the owner drained the deque, every item was
//    taken by somebody; no duplicate: nobody else took it);
//  - the taker sees the payload the owner wrote before pushing (a missing release/acquire shows up
//    as a data race on the rl::var payload or a wrong value);
//  - the taker then overwrites the payload, so two takers of one item would also race.
#include "scheduler/chase_lev_deque.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
// After every other header (see rl_shim.hpp).
#include "rl_shim.hpp"

namespace {

using corun::model::read;
using corun::model::rl_atomic;
using corun::model::run_options;
using corun::model::write;

struct item {
  int id = 0;            // set in before(), then immutable
  rl::var<int> payload;  // the owner writes id + 1 before pushing; the taker reads it
};

using deque = corun::detail::chase_lev_deque<item*, rl_atomic>;

/// One owner (thread 0) and `Thieves` thieves (threads 1..Thieves) on a deque of `Capacity`
/// initial slots, with `Items` items. The scenario's `thread()` scripts the owner and thieves.
template <class Derived, bool Light, int Items, int Thieves, int Capacity>
struct deque_test : rl::test_suite<Derived, Thieves + 1> {
  static constexpr int threads = Thieves + 1;

  std::array<item, Items> items;
  // Heap-allocated: the deque is cache-line aligned and Relacy allocates the test suite with
  // malloc.
  std::unique_ptr<deque> dq;
  // taken[t]: the ids thread t took, in order (each array written by its own thread only).
  std::array<std::array<int, Items>, threads> taken{};
  std::array<int, threads> taken_count{};

  void before() {
    dq = std::make_unique<deque>(Light, Capacity);
    for (int i = 0; i < Items; ++i) {
      items[static_cast<std::size_t>(i)].id = i;
    }
  }

  void after() {
    std::array<int, Items> times{};
    for (int t = 0; t < threads; ++t) {
      for (int k = 0; k < taken_count[static_cast<std::size_t>(t)]; ++k) {
        times[static_cast<std::size_t>(
            taken[static_cast<std::size_t>(t)][static_cast<std::size_t>(k)])] += 1;
      }
    }
    for (int i = 0; i < Items; ++i) {
      const int n = times[static_cast<std::size_t>(i)];
      RL_ASSERT(n != 0);  // lost: the owner drained the deque and nobody has it
      RL_ASSERT(n == 1);  // duplicated: two takers got the same item
    }
    dq.reset();
  }

  void push(int i) {
    item& it = items[static_cast<std::size_t>(i)];
    write(it.payload, i + 1);
    dq->push(&it);
  }

  void take(unsigned thread, item* it) {
    RL_ASSERT(it != nullptr);
    RL_ASSERT(read(it->payload) == it->id + 1);
    write(it->payload, -1);
    const std::size_t t = thread;
    RL_ASSERT(taken_count[t] < Items);
    taken[t][static_cast<std::size_t>(taken_count[t]++)] = it->id;
  }

  bool pop_one() {
    item* it = dq->pop();
    if (it != nullptr) {
      take(0, it);
    }
    return it != nullptr;
  }

  void drain() {
    while (pop_one()) {
    }
  }

  void steal(unsigned thread, int attempts) {
    for (int a = 0; a < attempts; ++a) {
      if (item* it = dq->steal()) {
        take(thread, it);
      }
    }
  }
};

/// Pushes and pops interleaved with two thieves, including `pop_if_bottom` (the inline join).
template <bool Light>
struct steal_vs_pop : deque_test<steal_vs_pop<Light>, Light, 4, 2, 8> {
  void thread(unsigned index) {
    if (index == 0) {
      this->push(0);
      this->push(1);
      this->push(2);
      this->pop_one();
      this->push(3);
      if (this->dq->pop_if_bottom(&this->items[3])) {
        this->take(0, &this->items[3]);
      }
      this->drain();
    } else {
      this->steal(index, 2);
    }
  }
};

/// One item, popped by the owner while thieves steal it: exactly one must win.
template <bool Light, int Thieves>
struct last_item : deque_test<last_item<Light, Thieves>, Light, 1, Thieves, 2> {
  void thread(unsigned index) {
    if (index == 0) {
      this->push(0);
      this->drain();
    } else {
      this->steal(index, 1);
    }
  }
};

/// Two items, the owner pops both while a thief steals: the last-item race after a plain pop.
template <bool Light>
struct last_two : deque_test<last_two<Light>, Light, 2, 1, 2> {
  void thread(unsigned index) {
    if (index == 0) {
      this->push(0);
      this->push(1);
      this->drain();
    } else {
      this->steal(index, 2);
    }
  }
};

/// Initial capacity 2: the ring grows twice (2 -> 4 -> 8) while two thieves steal, some of them
/// from a retired ring.
template <bool Light>
struct growth : deque_test<growth<Light>, Light, 6, 2, 2> {
  void thread(unsigned index) {
    if (index == 0) {
      this->push(0);
      this->push(1);
      this->push(2);  // grows to 4 unless a thief already took one
      this->pop_one();
      this->push(3);
      this->push(4);
      this->push(5);  // grows again if the thieves are slow
      this->drain();
    } else {
      this->steal(index, 3);
    }
  }
};

/// Capacity 2 and pushes that reuse slots. The owner keeps the last top it read (`try_push`),
/// which is stale whenever a thief stole since: a push past the ring's size must read top again
/// before it overwrites a slot, or it would overwrite an item no thief has taken yet (lost).
template <bool Light>
struct wraparound : deque_test<wraparound<Light>, Light, 5, 1, 2> {
  void thread(unsigned index) {
    if (index == 0) {
      this->push(0);
      this->push(1);  // the ring is full by the top read so far
      this->push(2);  // reuses item 0's slot if the thief took it, else grows
      this->pop_one();
      this->push(3);
      this->push(4);
      this->drain();
    } else {
      this->steal(index, 3);
    }
  }
};

/// Solo pops against a thief that wakes, steals and parks twice (see the file comment). With
/// `Barrier` false the thieves' asymmetric barrier is left out, which must be caught.
template <bool Barrier>
struct solo_pops : deque_test<solo_pops<Barrier>, true, 3, 1, 4> {
  rl_atomic<int> awake{0};  // thieves counted as awake (the idle state's unparked count)

  struct predicate {
    solo_pops* test;
    bool operator()() const {
      if constexpr (Barrier) {
        corun::model::thread_fence(std::memory_order_seq_cst);  // the membarrier, owner side
      }
      return test->awake.load(std::memory_order_acquire) == 0;  // idle::alone()
    }
  };

  bool solo_pop() {
    item* it = this->dq->pop(predicate{this});
    if (it != nullptr) {
      this->take(0, it);
    }
    return it != nullptr;
  }

  void thread(unsigned index) {
    if (index == 0) {
      this->push(0);
      this->push(1);
      solo_pop();
      this->push(2);
      if (this->dq->pop_if_bottom(&this->items[2], predicate{this})) {
        this->take(0, &this->items[2]);
      }
      while (solo_pop()) {
      }
    } else {
      for (int round = 0; round < 2; ++round) {
        awake.fetch_add(1, std::memory_order_seq_cst);  // woken (cancel_park or a waker)
        if constexpr (Barrier) {
          corun::model::thread_fence(std::memory_order_seq_cst);  // before_stealing_again
        }
        this->steal(index, 1);
        awake.fetch_sub(1, std::memory_order_seq_cst);  // transition_to_parked
      }
    }
  }
};

bool run_solo(double scale) {
  using corun::model::expect_caught;
  using corun::model::expect_holds;
  using corun::model::scaled;
  bool ok = true;
  ok &= expect_holds<solo_pops<true>>("solo pops with the asymmetric barrier vs a waking thief",
                                      run_options{rl::sched_bound, 0, 2});
  ok &= expect_holds<solo_pops<true>>("solo pops with the asymmetric barrier vs a waking thief",
                                      run_options{rl::sched_random, scaled(400000, scale)});
  ok &= expect_caught<solo_pops<false>>("solo pops without the thieves' barrier",
                                        run_options{rl::sched_random, scaled(400000, scale)});
  return ok;
}

template <bool Light>
bool run_all(double scale) {
  using corun::model::expect_holds;
  using corun::model::scaled;
  const std::string mode = Light ? "light push: " : "seq_cst push: ";
  const auto name = [&mode](const char* what) { return mode + what; };
  bool ok = true;
  // Systematic searches where they are affordable (full search: every interleaving; context
  // bound N: every interleaving with at most N preemptions), random ones everywhere (deeper
  // interleavings, and loads returning any value the memory model still allows).
  ok &= expect_holds<last_item<Light, 1>>(name("last item, pop vs 1 thief").c_str(),
                                          run_options{rl::sched_full, 0});
  ok &= expect_holds<last_two<Light>>(name("last two items, pops vs 1 thief").c_str(),
                                      run_options{rl::sched_bound, 0, 2});
  ok &= expect_holds<last_two<Light>>(name("last two items, pops vs 1 thief").c_str(),
                                      run_options{rl::sched_random, scaled(200000, scale)});
  ok &= expect_holds<last_item<Light, 2>>(name("last item, pop vs 2 thieves").c_str(),
                                          run_options{rl::sched_bound, 0, 1});
  ok &= expect_holds<last_item<Light, 2>>(name("last item, pop vs 2 thieves").c_str(),
                                          run_options{rl::sched_random, scaled(300000, scale)});
  ok &= expect_holds<steal_vs_pop<Light>>(name("push/pop/pop_if_bottom vs 2 thieves").c_str(),
                                          run_options{rl::sched_bound, 0, 1});
  ok &= expect_holds<steal_vs_pop<Light>>(name("push/pop/pop_if_bottom vs 2 thieves").c_str(),
                                          run_options{rl::sched_random, scaled(400000, scale)});
  ok &= expect_holds<growth<Light>>(name("growth from capacity 2 vs 2 thieves").c_str(),
                                    run_options{rl::sched_random, scaled(400000, scale)});
  ok &= expect_holds<wraparound<Light>>(name("slot reuse with a cached top vs 1 thief").c_str(),
                                        run_options{rl::sched_bound, 0, 2});
  ok &= expect_holds<wraparound<Light>>(name("slot reuse with a cached top vs 1 thief").c_str(),
                                        run_options{rl::sched_random, scaled(200000, scale)});
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const double scale = corun::model::iteration_scale(argc, argv);
  bool ok = run_all<false>(scale);
  ok &= run_all<true>(scale);
  ok &= run_solo(scale);
  std::cout << (ok ? "deque model: all checks passed" : "deque model: FAILED") << std::endl;
  return ok ? 0 : 1;
}
