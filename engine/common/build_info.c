#include "mimo/build_info.h"

#include "mimo_git_commit.h"   /* generated at build time (cmake/git_commit.cmake) */
#ifndef MIMO_BUILD_FLAGS
#define MIMO_BUILD_FLAGS ""
#endif

const char *mimo_version(void) { return "0.1.0"; }
const char *mimo_git_commit(void) { return MIMO_GIT_COMMIT; }
const char *mimo_build_flags(void) { return MIMO_BUILD_FLAGS; }
