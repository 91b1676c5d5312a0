package io.diskstack.core.job;

/** Time for jobs' speed limits, injected so tests judge rates without the wall clock. */
public interface JobClock {
    long nanoTime();

    /** Waits this long, or less if interrupted. */
    void sleepNanos(long nanos) throws InterruptedException;

    JobClock SYSTEM = new JobClock() {
        @Override
        public long nanoTime() {
            return System.nanoTime();
        }

        @Override
        public void sleepNanos(long nanos) throws InterruptedException {
            if (nanos > 0) {
                Thread.sleep(nanos / 1_000_000, (int) (nanos % 1_000_000));
            }
        }
    };
}
