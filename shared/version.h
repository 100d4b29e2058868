/* version.h: the one version string of Tide, shared by tide-agent, tide-controlplane and tidectl
 * (the wire protocol's own version is WIRE_VERSION in wire.h). */
#ifndef TIDE_VERSION_H
#define TIDE_VERSION_H

#define TIDE_VERSION "0.1.0"

#endif
