/*
 * configfs rules for the benchmark's fake kernel, preloaded into both
 * implementations (LD_PRELOAD).
 *
 * The fake configfs is a plain directory ($O2CB_BENCH_CONFIGFS).  configfs
 * differs from a plain directory in three ways that the o2cb tools rely on,
 * and this shim adds exactly those:
 *   - mkdir of a cluster, node or heartbeat region makes its attribute files
 *     (and a cluster's node/ and heartbeat/ groups), as o2nm does;
 *   - rmdir of such an item removes them again (configfs allows it while no
 *     child item remains);
 *   - statfs reports configfs's magic: ocfs2-tools' libo2cb refuses a
 *     configfs path that does not carry it.
 * Nothing else is changed; paths outside the fake configfs pass straight on.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <unistd.h>

#define CONFIGFS_MAGIC 0x62656570

struct attr { const char *name, *value; };

static const struct attr cluster_attrs[] = {
	{"idle_timeout_ms", "30000\n"}, {"keepalive_delay_ms", "2000\n"},
	{"reconnect_delay_ms", "2000\n"}, {"fence_method", "reset\n"}, {0, 0}};
static const struct attr heartbeat_attrs[] = {
	{"dead_threshold", "31\n"}, {"mode", "local\n"}, {0, 0}};
static const struct attr node_attrs[] = {
	{"num", "0\n"}, {"ipv4_address", "0.0.0.0\n"}, {"ipv4_port", "0\n"},
	{"local", "0\n"}, {0, 0}};
static const struct attr region_attrs[] = {
	{"block_bytes", "0\n"}, {"start_block", "0\n"}, {"blocks", "0\n"},
	{"dev", "\n"}, {"pid", "\n"}, {0, 0}};

enum item { NONE, CLUSTER, NODE, REGION };

static int (*real_mkdir)(const char *, mode_t);
static int (*real_rmdir)(const char *);
static int (*real_statfs)(const char *, struct statfs *);

static void bind_real(void)
{
	if (!real_mkdir) {
		real_mkdir = dlsym(RTLD_NEXT, "mkdir");
		real_rmdir = dlsym(RTLD_NEXT, "rmdir");
		real_statfs = dlsym(RTLD_NEXT, "statfs");
	}
}

/* The part of an absolute path below the fake configfs, or NULL. */
static const char *inside(const char *path)
{
	const char *top = getenv("O2CB_BENCH_CONFIGFS");
	size_t n;

	if (!top || !*top || !path || path[0] != '/')
		return NULL;
	n = strlen(top);
	if (strncmp(path, top, n) != 0 || (path[n] != '/' && path[n] != '\0'))
		return NULL;
	path += n;
	while (*path == '/')
		path++;
	return path;
}

/* cluster/C, cluster/C/node/N or cluster/C/heartbeat/R */
static enum item classify(const char *rel)
{
	char copy[4096], *parts[6], *save = NULL, *tok;
	int count = 0;

	if (strlen(rel) >= sizeof(copy))
		return NONE;
	strcpy(copy, rel);
	for (tok = strtok_r(copy, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (count == 5)
			return NONE;
		parts[count++] = tok;
	}
	if (count < 2 || strcmp(parts[0], "cluster") != 0)
		return NONE;
	if (count == 2)
		return CLUSTER;
	if (count == 4 && strcmp(parts[2], "node") == 0)
		return NODE;
	if (count == 4 && strcmp(parts[2], "heartbeat") == 0)
		return REGION;
	return NONE;
}

static void write_attrs(const char *dir, const struct attr *attrs)
{
	char path[8400];

	for (; attrs->name; attrs++) {
		int fd;

		snprintf(path, sizeof(path), "%s/%s", dir, attrs->name);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			if (write(fd, attrs->value, strlen(attrs->value)) < 0)
				(void)0;
			close(fd);
		}
	}
}

static void remove_attrs(const char *dir, const struct attr *attrs)
{
	char path[8400];

	for (; attrs->name; attrs++) {
		snprintf(path, sizeof(path), "%s/%s", dir, attrs->name);
		unlink(path);
	}
}

/* Whether a group directory holds an item (a subdirectory). */
static int has_items(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *entry;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (entry = readdir(d))) {
		if (entry->d_name[0] != '.' && entry->d_type == DT_DIR)
			found = 1;
	}
	closedir(d);
	return found;
}

int mkdir(const char *path, mode_t mode)
{
	const char *rel;
	char sub[4200];
	int rc;

	bind_real();
	rc = real_mkdir(path, mode);
	if (rc != 0 || !(rel = inside(path)))
		return rc;
	switch (classify(rel)) {
	case CLUSTER:
		write_attrs(path, cluster_attrs);
		snprintf(sub, sizeof(sub), "%s/node", path);
		real_mkdir(sub, 0755);
		snprintf(sub, sizeof(sub), "%s/heartbeat", path);
		real_mkdir(sub, 0755);
		write_attrs(sub, heartbeat_attrs);
		break;
	case NODE:
		write_attrs(path, node_attrs);
		break;
	case REGION:
		write_attrs(path, region_attrs);
		break;
	case NONE:
		break;
	}
	return rc;
}

int rmdir(const char *path)
{
	const char *rel;
	char node[4200], heartbeat[4200];

	bind_real();
	rel = inside(path);
	switch (rel ? classify(rel) : NONE) {
	case CLUSTER:
		snprintf(node, sizeof(node), "%s/node", path);
		snprintf(heartbeat, sizeof(heartbeat), "%s/heartbeat", path);
		if (has_items(node) || has_items(heartbeat)) {
			errno = ENOTEMPTY;
			return -1;
		}
		remove_attrs(heartbeat, heartbeat_attrs);
		real_rmdir(heartbeat);
		real_rmdir(node);
		remove_attrs(path, cluster_attrs);
		break;
	case NODE:
		remove_attrs(path, node_attrs);
		break;
	case REGION:
		remove_attrs(path, region_attrs);
		break;
	case NONE:
		break;
	}
	return real_rmdir(path);
}

int statfs(const char *path, struct statfs *buf)
{
	int rc;

	bind_real();
	rc = real_statfs(path, buf);
	if (rc == 0 && inside(path))
		buf->f_type = CONFIGFS_MAGIC;
	return rc;
}

int statfs64(const char *path, struct statfs64 *buf)
{
	static int (*real_statfs64)(const char *, struct statfs64 *);
	int rc;

	if (!real_statfs64)
		real_statfs64 = dlsym(RTLD_NEXT, "statfs64");
	rc = real_statfs64(path, buf);
	if (rc == 0 && inside(path))
		buf->f_type = CONFIGFS_MAGIC;
	return rc;
}
