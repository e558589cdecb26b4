// Package cgroup gives each dyno its own cgroup v2 leaf, with the memory,
// process and CPU limits of its size.
//
// Linux documents the interface in Documentation/admin-guide/cgroup-v2.rst;
// the comments here cite its sections by title. The package works inside a
// cgroup delegated to the user running dyno (a systemd scope or service
// with Delegate=yes), so it never needs root. The layout is
//
//	<delegated>/supervisor/    the dyno supervisor itself
//	<delegated>/dynos/         controllers enabled for its children
//	<delegated>/dynos/web.1/   one leaf per dyno: its init and everything below
//
// because a cgroup that hands controllers to its children may hold no
// processes of its own ("No Internal Process Constraint").
//
// ProbeSystem says whether the host offers such a cgroup and, when it does
// not, why and how to fix it in one sentence; dynos then run without limits.
// Setup builds the layout, Tree.NewLeaf makes a dyno's leaf, and Leaf reads
// its usage and kills or removes it. Sizes maps Heroku's dyno sizes to
// Limits.
//
// Every path is a parameter, so everything but the enforcement itself can
// be tested against a plain directory that imitates cgroupfs.
package cgroup
