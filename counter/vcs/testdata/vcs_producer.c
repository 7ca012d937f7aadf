/*
 * A VCS counter producer written in C from the segment layout alone, so that
 * the tests check mmaplog's reader against a producer that shares no code
 * with it. Built by the tests with gcc; not part of the library.
 *
 *   vcs_producer create KEY                   create the segment, store the magics
 *   vcs_producer run KEY THREADS MILLIS SEED  add to it for MILLIS ms; print "RULE METRIC SUM" lines
 *   vcs_producer guard KEY before|after       write one byte into a guard page
 *
 * Segment: one guard page, then magic1, the index word, two maps of
 * 131072 rules x 128 uint32 entries, 64 reserved words, magic2, padding to
 * a whole page, one guard page. Producers load the index and add atomically
 * to map[index][rule][metric].
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <time.h>
#include <unistd.h>

#define MAGIC1 0x650a218u
#define MAGIC2 0x138a4f2u
#define RULES (1024 * 128)
#define METRICS 128

struct vcs_data {
	uint32_t magic1;
	uint32_t idx;
	uint32_t map[2][RULES][METRICS];
	uint32_t reserved[64];
	uint32_t magic2;
};

_Static_assert(sizeof(struct vcs_data) == 4 + 4 + 2 * (size_t)RULES * METRICS * 4 + 64 * 4 + 4, "layout");

static size_t page, data_bytes;
static char *base;
static struct vcs_data *seg;

static void attach(key_t key, int create)
{
	page = (size_t)sysconf(_SC_PAGESIZE);
	data_bytes = (sizeof(struct vcs_data) + page - 1) / page * page;
	int id = shmget(key, data_bytes + 2 * page, create ? IPC_CREAT | IPC_EXCL | 0600 : 0);
	if (id < 0) {
		perror("shmget");
		exit(2);
	}
	base = shmat(id, NULL, 0);
	if (base == (void *)-1) {
		perror("shmat");
		exit(2);
	}
	seg = (struct vcs_data *)(base + page);
	if (create) {
		seg->idx = 0;
		seg->magic1 = MAGIC1;
		seg->magic2 = MAGIC2;
	}
	if (seg->magic1 != MAGIC1 || seg->magic2 != MAGIC2) {
		fprintf(stderr, "vcs_producer: bad magic\n");
		exit(2);
	}
	if (mprotect(base, page, PROT_NONE) != 0 || mprotect(base + page + data_bytes, page, PROT_NONE) != 0) {
		perror("mprotect");
		exit(2);
	}
}

/* The tests use 256 rules and 16 metrics spread over the whole map. */
#define USED_RULES 256
#define USED_METRICS 16
#define RULE_SPREAD (RULES / USED_RULES)
#define METRIC_SPREAD (METRICS / USED_METRICS)

struct worker {
	pthread_t th;
	uint64_t seed;
	long millis;
	uint64_t adds;
	uint64_t tally[USED_RULES * USED_METRICS];
};

static uint64_t next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Set by SIGTERM: with MILLIS 0 the workers add until it arrives. */
static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	long end = now_ms() + w->millis;
	for (long i = 0;; i++) {
		uint64_t x = next(&w->seed);
		unsigned r = x % USED_RULES, m = (x >> 16) % USED_METRICS, v = 1 + (x >> 32) % 3;
		uint32_t idx = __atomic_load_n(&seg->idx, __ATOMIC_ACQUIRE) & 1;
		__atomic_fetch_add(&seg->map[idx][r * RULE_SPREAD][m * METRIC_SPREAD], v, __ATOMIC_RELAXED);
		w->tally[r * USED_METRICS + m] += v;
		w->adds++;
		if (i % 1000 == 999) {
			if (w->millis > 0 ? now_ms() >= end : stop)
				break;
			struct timespec ts = {0, 100000}; /* let collections interleave */
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: vcs_producer create|run|guard KEY ...\n");
		return 2;
	}
	key_t key = (key_t)strtol(argv[2], NULL, 0);
	if (strcmp(argv[1], "create") == 0) {
		attach(key, 1);
		return 0;
	}
	if (strcmp(argv[1], "guard") == 0 && argc == 4) {
		attach(key, 0);
		volatile char *p = strcmp(argv[3], "before") == 0 ? base + page - 1 : base + page + data_bytes;
		*p = 0x5a; /* SIGSEGV here */
		return 0;
	}
	if (strcmp(argv[1], "run") != 0 || argc != 6) {
		fprintf(stderr, "usage: vcs_producer run KEY THREADS MILLIS SEED (MILLIS 0: until SIGTERM)\n");
		return 2;
	}
	attach(key, 0);
	int threads = atoi(argv[3]);
	long millis = atol(argv[4]);
	uint64_t seed = strtoull(argv[5], NULL, 0);
	struct sigaction sa = {0};
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	/* "running" once the handler is in place, so that a SIGTERM is never fatal */
	fprintf(stderr, "running\n");
	struct worker *ws = calloc(threads, sizeof *ws);
	for (int t = 0; t < threads; t++) {
		ws[t].seed = seed * 7919 + t + 1;
		ws[t].millis = millis;
		pthread_create(&ws[t].th, NULL, work, &ws[t]);
	}
	for (int t = 0; t < threads; t++)
		pthread_join(ws[t].th, NULL);
	uint64_t adds = 0;
	for (int t = 0; t < threads; t++)
		adds += ws[t].adds;
	fprintf(stderr, "adds %llu\n", (unsigned long long)adds);
	for (size_t i = 0; i < USED_RULES * USED_METRICS; i++) {
		uint64_t sum = 0;
		for (int t = 0; t < threads; t++)
			sum += ws[t].tally[i];
		if (sum)
			printf("%zu %zu %llu\n", (i / USED_METRICS) * RULE_SPREAD, (i % USED_METRICS) * METRIC_SPREAD, (unsigned long long)sum);
	}
	return 0;
}
