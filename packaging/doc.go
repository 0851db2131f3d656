// Package packaging holds what installs fpgaops on a host: the systemd
// units of the controller and the node agent, their flag files, the
// controller's system user, and the Debian package's nfpm configuration
// (`make install`, `make deb`; docs/packaging.md). It has no Go code: its
// test checks what the Makefile builds from these files.
package packaging
