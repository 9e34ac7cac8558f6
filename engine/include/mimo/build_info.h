/* What this binary was built from: recorded in every results file. */
#ifndef MIMO_BUILD_INFO_H
#define MIMO_BUILD_INFO_H

const char *mimo_version(void);
const char *mimo_git_commit(void);   /* short hash at configure time, or "unknown" */
const char *mimo_build_flags(void);

#endif
