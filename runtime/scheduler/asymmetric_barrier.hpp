/// \file
/// An asymmetric StoreLoad barrier: nothing but a compiler barrier on the hot side, a
/// process-wide `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` on the rare side.
///
/// Why: a worker's push must be ordered before its read of the idle state (idle.hpp, step 1),
/// and a parking worker's write of the idle state before its recheck of the deques (step 4).
/// Making both sides seq_cst costs a locked instruction on every spawn. With membarrier the
/// parking worker (rare, already about to sleep) forces a full barrier on every running thread
/// of the process, which is the asymmetric Dekker pattern of folly's `asymmetricHeavyBarrier`:
/// for any pusher, its barrier point falls before its store (then its load sees the parker's
/// write), between its store and its load (the store is visible to the recheck), or after its
/// load (the store is visible too). Where the kernel refuses membarrier, `available()` is false
/// and callers keep the seq_cst exchange.
#pragma once

namespace corun::detail::asymmetric_barrier {

/// True if the heavy side works in this process (registered on first call; thread-safe).
[[nodiscard]] bool available() noexcept;

/// The heavy side: returns after every running thread of the process executed a full barrier.
void heavy() noexcept;

}  // namespace corun::detail::asymmetric_barrier
