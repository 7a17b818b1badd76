/*
 * mod_empty.c: a module that does nothing, for bench/instructions.py.
 *
 * No hooks, no configuration, no directives: loaded in mod_usdt's place it
 * costs only what being a module costs Apache on every request (a slot in
 * each per-request and per-directory configuration vector, the merges that
 * walk them).  That is the floor mod_usdt's untraced cost is measured from.
 *
 * Licensed under the Apache License, Version 2.0.
 */
#include "httpd.h"
#include "http_config.h"

AP_DECLARE_MODULE(empty) = {
	STANDARD20_MODULE_STUFF,
	NULL,                   /* create per-directory config */
	NULL,                   /* merge per-directory config */
	NULL,                   /* create per-server config */
	NULL,                   /* merge per-server config */
	NULL,                   /* directives */
	NULL,                   /* register hooks: none */
#ifdef AP_MODULE_FLAG_NONE
	AP_MODULE_FLAG_NONE     /* flags */
#endif
};
