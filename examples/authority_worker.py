"""Workers driving runs through the mutation authority: validated, durable commands.

Run: python examples/authority_worker.py [N_TASKS]

``MutationAuthority`` checks each command against the projection, appends it with the
next sequence (here with group commit: it returns once an fsync covered it) and applies
it. Two worker threads lease runs, run attempts (the first attempt of every third run
fails and is retried: Running -> RetryWait -> Ready), and complete them; a budget is
consumed and a subscription fires. A command the state does not allow is rejected with a
typed error and writes nothing. At the end the log is replayed from disk and compared.
"""

from __future__ import annotations

import queue
import sys
import tempfile
import threading

import actionqueue as aq

S = aq.RunState
R = aq.AttemptResultKind
TOKEN = aq.BudgetDimension.TOKEN


def main(n_tasks: int = 40) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        store = aq.open(data_dir, durability="group")
        authority = aq.MutationAuthority.from_store(store)
        ready: queue.SimpleQueue = queue.SimpleQueue()

        # the scheduler: tasks (Once and Repeat), a budget, a subscription, runs made Ready
        billing = aq.TaskId.new()
        authority.create_task(aq.TaskSpec(billing, run_policy=aq.RunPolicy.repeat(3, 60)))
        authority.allocate_budget(billing, TOKEN, 10_000)
        sub = aq.SubscriptionId.new()
        authority.create_subscription(sub, billing, aq.TaskCompletedFilter(billing))
        tasks = [billing] + [aq.TaskId.new() for _ in range(n_tasks - 1)]
        for task in tasks[1:]:
            authority.create_task(aq.TaskSpec(task))
        runs = []
        for task in tasks:
            for out in authority.derive_runs(task):
                run = out.event.run_instance.id
                authority.transition_run(run, S.SCHEDULED, S.READY)
                runs.append(run)
                ready.put((run, task, 0))

        # a command the state does not allow: typed, and nothing is written
        try:
            authority.transition_run(runs[0], S.READY, S.COMPLETED)
        except aq.CommandRejected as exc:
            print(f"rejected       {exc.kind}: {exc}")

        def worker(name: str) -> None:
            while True:
                item = ready.get()
                if item is None:
                    return
                run, task, attempts = item
                expiry = 2_000_000_000
                authority.acquire_lease(run, name, expiry)
                authority.transition_run(run, S.READY, S.LEASED)
                authority.transition_run(run, S.LEASED, S.RUNNING)
                attempt = authority.start_attempt(run).event.attempt_id
                authority.heartbeat_lease(run, name, expiry + 30)
                if task == billing:
                    authority.consume_budget(task, TOKEN, 1_500)
                if attempts == 0 and runs.index(run) % 3 == 0:  # fails once, retried
                    authority.finish_attempt(run, attempt, R.FAILURE, error="upstream timeout")
                    authority.release_lease(run, name, expiry + 30)
                    authority.transition_run(run, S.RUNNING, S.RETRY_WAIT)
                    authority.transition_run(run, S.RETRY_WAIT, S.READY)
                    ready.put((run, task, attempts + 1))
                    continue
                authority.finish_attempt(run, attempt, R.SUCCESS, output=b"ok")
                authority.transition_run(run, S.RUNNING, S.COMPLETED)  # ends the lease
                with done_lock:
                    done.append(run)
                    if len(done) == len(runs):
                        for _ in threads:
                            ready.put(None)

        done: list = []
        done_lock = threading.Lock()
        threads = [threading.Thread(target=worker, args=(f"worker-{i}",)) for i in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        authority.trigger_subscription(sub)

        r = authority.reducer
        budget = r.get_budget(billing, TOKEN)
        print(f"runs           {len(r.runs_in_state(S.COMPLETED))} of {r.run_count} completed")
        print(f"attempts       {sum(len(r.get_attempt_history(run)) for run in runs)} for {len(runs)} runs")
        print(f"budget         {budget.consumed:,} of {budget.limit:,} tokens used (exhausted: {budget.exhausted})")
        print(f"log            {r.latest_sequence} events, gapless")
        store.close()

        replayed = aq.ReplayReducer()
        replayed.apply_all(list(aq.WalReader(data_dir)))
        assert replayed.latest_sequence == r.latest_sequence
        assert len(replayed.runs_in_state(S.COMPLETED)) == len(runs)
        print("replay         the log on disk gives the same projection")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
