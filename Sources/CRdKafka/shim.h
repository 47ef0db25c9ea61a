#include <librdkafka/rdkafka.h>

#if defined(__linux__)
#include <pthread.h>
/* glibc declares this only under _GNU_SOURCE, which the Swift importer does
   not define; an identical prototype is a valid redeclaration. */
extern int pthread_setname_np(pthread_t thread, const char *name);

/* Names the calling thread (at most 15 bytes are kept), for top/gdb. */
static inline int privtrak_name_current_thread(const char *name) {
    char truncated[16] = {0};
    for (int i = 0; i < 15 && name[i] != 0; i++) truncated[i] = name[i];
    return pthread_setname_np(pthread_self(), truncated);
}
#endif
