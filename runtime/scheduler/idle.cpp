#include "scheduler/idle.hpp"

#include <algorithm>

namespace corun::detail {

std::size_t idle::wake_if_needed(std::uint64_t state) {
  if (searching(state) != 0 || unparked(state) >= m_workers) {
    return nobody;
  }
  const std::lock_guard lock(m_lock);
  // Re-read under the lock: sleepers only come and go under it.
  state = m_state.load(std::memory_order_seq_cst);
  if (searching(state) != 0 || m_sleepers.empty()) {
    return nobody;
  }
  const std::size_t worker = m_sleepers.back();
  m_sleepers.pop_back();
  // The woken worker starts as a searcher (step 5).
  m_state.fetch_add(one_unparked + one_searching, std::memory_order_seq_cst);
  return worker;
}

void idle::transition_to_parked(std::size_t worker, bool was_searching) {
  const std::lock_guard lock(m_lock);
  m_state.fetch_sub(one_unparked + (was_searching ? one_searching : 0), std::memory_order_seq_cst);
  m_sleepers.push_back(worker);
}

bool idle::cancel_park(std::size_t worker) {
  const std::lock_guard lock(m_lock);
  const auto it = std::find(m_sleepers.begin(), m_sleepers.end(), worker);
  if (it == m_sleepers.end()) {
    return false;
  }
  m_sleepers.erase(it);
  m_state.fetch_add(one_unparked + one_searching, std::memory_order_seq_cst);
  return true;
}

std::vector<std::size_t> idle::take_all_sleepers() {
  const std::lock_guard lock(m_lock);
  std::vector<std::size_t> all;
  all.swap(m_sleepers);
  m_state.fetch_add(all.size() * (one_unparked + one_searching), std::memory_order_seq_cst);
  return all;
}

}  // namespace corun::detail
