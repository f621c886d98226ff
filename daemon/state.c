/*
 * state.c - what a request reads besides its body: the config and the model
 * in force.  A request takes a reference for its whole life (including the
 * wait for Redis); SIGHUP publishes a new state, and the old one is freed
 * when its last request lets go.  Workers never see a half-loaded model.
 *
 * The learner (learn.c) publishes a fresh model with the same config many
 * times between reloads: states made by state_publish_model() share their
 * config, which goes with the last of them.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modfilterd.h"

static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static struct state *state_current;

struct state *
state_new(struct config *cfg, struct clf_model *model, const char *model_id,
          unsigned generation)
{
    struct state *st = calloc(1, sizeof(*st));

    if (st != NULL && (st->cfg_refs = malloc(sizeof(*st->cfg_refs))) == NULL) {
        free(st);
        st = NULL;
    }
    if (st == NULL) {
        config_free(cfg);
        clf_model_free(model);
        return NULL;
    }
    st->cfg = cfg;
    st->model = model;
    st->generation = generation;
    snprintf(st->model_id, sizeof(st->model_id), "%s", model_id);
    st->refs = 1;
    *st->cfg_refs = 1;
    return st;
}

struct state *
state_acquire(void)
{
    struct state *st;

    pthread_mutex_lock(&state_lock);
    st = state_current;
    if (st != NULL)
        __atomic_add_fetch(&st->refs, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&state_lock);
    return st;
}

void
state_release(struct state *st)
{
    if (st == NULL)
        return;
    if (__atomic_sub_fetch(&st->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    if (__atomic_sub_fetch(st->cfg_refs, 1, __ATOMIC_ACQ_REL) == 0) {
        config_free(st->cfg);
        free(st->cfg_refs);
    }
    clf_model_free(st->model);
    free(st);
}

void
state_publish(struct state *st)
{
    struct state *old;

    pthread_mutex_lock(&state_lock);
    old = state_current;
    state_current = st;
    pthread_mutex_unlock(&state_lock);
    state_release(old);
}

int
state_publish_model(struct clf_model *model)
{
    struct state *st = calloc(1, sizeof(*st)), *old;

    if (st == NULL) {
        clf_model_free(model);
        return -1;
    }
    st->model = model;
    st->refs = 1;
    pthread_mutex_lock(&state_lock);
    old = state_current;
    if (old == NULL) {
        pthread_mutex_unlock(&state_lock);
        clf_model_free(model);
        free(st);
        return -1;
    }
    st->cfg = old->cfg;
    st->cfg_refs = old->cfg_refs;
    __atomic_add_fetch(st->cfg_refs, 1, __ATOMIC_RELAXED);
    st->generation = old->generation;
    /* The base's id, not the clone's: that one is the checksum of the
     * learner's last snapshot (clf_model_save sets it), which differs
     * from daemon to daemon. */
    memcpy(st->model_id, old->model_id, sizeof(st->model_id));
    state_current = st;
    pthread_mutex_unlock(&state_lock);
    state_release(old);
    return 0;
}
