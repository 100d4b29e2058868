/* version.h: the release both daemons and tidectl report (--version, tide_build_info). */
#ifndef TIDE_VERSION_H
#define TIDE_VERSION_H

#define TIDE_RELEASE "0.1.0"

#endif
