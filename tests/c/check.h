/* check.h: the smallest test harness that can fail loudly.
 *
 *   static void test_something(void) { CHECK(x == 1); CHECK_STR(a, "b"); }
 *   int main(void) { RUN(test_something); return check_summary(); }
 *
 * Prints one line per failed check and a closing "N passed, N failed" line.
 */
#ifndef JUJU_TESTS_CHECK_H
#define JUJU_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures_;
static int check_tests_passed_;
static int check_tests_failed_;
static int check_current_failed_;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures_++;                                                        \
            check_current_failed_ = 1;                                                \
        }                                                                             \
    } while (0)

#define CHECK_INT(a, b)                                                                        \
    do {                                                                                       \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                        \
        if (check_a_ != check_b_) {                                                            \
            fprintf(stderr, "%s:%d: CHECK_INT failed: %s == %lld, expected %lld\n", __FILE__, \
                    __LINE__, #a, check_a_, check_b_);                                         \
            check_failures_++;                                                                 \
            check_current_failed_ = 1;                                                         \
        }                                                                                      \
    } while (0)

#define CHECK_STR(a, b)                                                                     \
    do {                                                                                    \
        const char *check_a_ = (a), *check_b_ = (b);                                        \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                    \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s == \"%s\", expected \"%s\"\n",    \
                    __FILE__, __LINE__, #a, check_a_ ? check_a_ : "(null)",                  \
                    check_b_ ? check_b_ : "(null)");                                        \
            check_failures_++;                                                              \
            check_current_failed_ = 1;                                                      \
        }                                                                                   \
    } while (0)

#define RUN(fn)                                                   \
    do {                                                          \
        check_current_failed_ = 0;                                \
        fn();                                                     \
        if (check_current_failed_) {                              \
            check_tests_failed_++;                                \
            fprintf(stderr, "FAIL %s\n", #fn);                    \
        } else {                                                  \
            check_tests_passed_++;                                \
        }                                                         \
    } while (0)

static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", check_tests_passed_, check_tests_failed_);
    return check_tests_failed_ ? 1 : 0;
}

#endif
