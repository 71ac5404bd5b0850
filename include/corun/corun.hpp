/// \file
/// Umbrella header: everything public in corun.
#pragma once

#include "corun/as_completed.hpp"           // IWYU pragma: export
#include "corun/async_context.hpp"          // IWYU pragma: export
#include "corun/async_event.hpp"            // IWYU pragma: export
#include "corun/async_generator.hpp"        // IWYU pragma: export
#include "corun/async_mutex.hpp"            // IWYU pragma: export
#include "corun/async_semaphore.hpp"        // IWYU pragma: export
#include "corun/cancel.hpp"                 // IWYU pragma: export
#include "corun/cancel_and_await.hpp"       // IWYU pragma: export
#include "corun/cancelled.hpp"              // IWYU pragma: export
#include "corun/catch_each.hpp"             // IWYU pragma: export
#include "corun/channel.hpp"                // IWYU pragma: export
#include "corun/create_timer.hpp"           // IWYU pragma: export
#include "corun/exception_group.hpp"        // IWYU pragma: export
#include "corun/join_handle.hpp"            // IWYU pragma: export
#include "corun/link.hpp"                   // IWYU pragma: export
#include "corun/merge.hpp"                  // IWYU pragma: export
#include "corun/persistent_task_group.hpp"  // IWYU pragma: export
#include "corun/run_until_signal.hpp"       // IWYU pragma: export
#include "corun/runtime.hpp"                // IWYU pragma: export
#include "corun/service.hpp"                // IWYU pragma: export
#include "corun/shield.hpp"                 // IWYU pragma: export
#include "corun/spawn.hpp"                  // IWYU pragma: export
#include "corun/spawn_options.hpp"          // IWYU pragma: export
#include "corun/supervisor.hpp"             // IWYU pragma: export
#include "corun/task.hpp"                   // IWYU pragma: export
#include "corun/task_creator.hpp"           // IWYU pragma: export
#include "corun/task_group.hpp"             // IWYU pragma: export
#include "corun/task_local.hpp"             // IWYU pragma: export
#include "corun/this_task.hpp"              // IWYU pragma: export
#include "corun/time.hpp"                   // IWYU pragma: export
#include "corun/timeout.hpp"                // IWYU pragma: export
#include "corun/when_all.hpp"               // IWYU pragma: export
#include "corun/when_any.hpp"               // IWYU pragma: export
