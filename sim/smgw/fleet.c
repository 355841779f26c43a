/*
 * fleet.c - loading the simulated fleet: gateways and devices from a
 * registry import document, gateway credentials from the PKI bundle, GWA
 * keys from the PKI; lookup tables by id and by loopback address.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/pki.h"
#include "registry/registry.h"
#include "smgw/sim.h"

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* Open addressing: slot holds index + 1, 0 is empty. 'name' gives the id
 * of an index. */
static void table_put(uint32_t *t, uint32_t slots, const char *id, uint32_t idx)
{
    uint64_t h = hash_str(id);
    for (uint32_t i = 0;; i++) {
        uint32_t s = (uint32_t)((h + i) & (slots - 1));
        if (t[s] == 0) {
            t[s] = idx + 1;
            return;
        }
    }
}

struct gw *fleet_gw(struct sim *s, const char *id)
{
    uint64_t h = hash_str(id);
    for (uint32_t i = 0; i < s->gw_slots; i++) {
        uint32_t v = s->gw_index[(h + i) & (s->gw_slots - 1)];
        if (v == 0)
            return NULL;
        if (strcmp(s->gws[v - 1].id, id) == 0)
            return &s->gws[v - 1];
    }
    return NULL;
}

struct dev *fleet_dev(struct sim *s, const char *id)
{
    uint64_t h = hash_str(id);
    for (uint32_t i = 0; i < s->dev_slots; i++) {
        uint32_t v = s->dev_index[(h + i) & (s->dev_slots - 1)];
        if (v == 0)
            return NULL;
        if (strcmp(s->devs[v - 1].id, id) == 0)
            return &s->devs[v - 1];
    }
    return NULL;
}

void fleet_dev_addr(uint32_t idx, struct sockaddr_in *out)
{
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_addr.s_addr = htonl((127u << 24) | ((64u + (idx >> 16)) << 16) | (idx & 0xffffu));
}

void fleet_gw_addr(uint32_t idx, struct sockaddr_in *out)
{
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_addr.s_addr = htonl((127u << 24) | ((128u + (idx >> 16)) << 16) | (idx & 0xffffu));
}

struct dev *fleet_dev_by_addr(struct sim *s, const struct sockaddr_in *a)
{
    uint32_t ip = ntohl(a->sin_addr.s_addr);
    if ((ip >> 24) != 127 || ((ip >> 16) & 0xff) < 64 || ((ip >> 16) & 0xff) >= 128)
        return NULL;
    uint32_t idx = ((((ip >> 16) & 0xff) - 64) << 16) | (ip & 0xffff);
    return idx < s->ndevs ? &s->devs[idx] : NULL;
}

static uint32_t slots_for(uint32_t n)
{
    uint32_t s = 1024;
    while (s < n * 2)
        s *= 2;
    return s;
}

/* --- registry ------------------------------------------------------------------------ */

struct load {
    struct sim *s;
    json_t *doc;
    json_t *by_smgw; /* smgw id -> {"gwa": index} from the registry */
    uint32_t ngws, cap;
};

static int on_bundle_entry(void *arg, const char *id, const uint8_t *cert_der, size_t cert_len,
                           const uint8_t *key_der, size_t key_len)
{
    struct load *ld = arg;
    struct sim *s = ld->s;
    json_t *info = json_object_get(ld->by_smgw, id);
    if (info == NULL || json_object_get(info, "loaded"))
        return 0; /* not in this fleet, or twice in the bundle */
    if (ld->ngws == ld->cap)
        return -ENOMEM;
    struct gw *g = &s->gws[ld->ngws];
    str_copy(g->id, sizeof g->id, id);
    g->idx = ld->ngws;
    g->gwa = (int)json_integer_value(json_object_get(info, "gwa"));
    g->cert_der = malloc(cert_len);
    g->key_der = malloc(key_len);
    if (g->cert_der == NULL || g->key_der == NULL)
        return -ENOMEM;
    memcpy(g->cert_der, cert_der, cert_len);
    memcpy(g->key_der, key_der, key_len);
    g->cert_len = (uint32_t)cert_len;
    g->key_len = (uint32_t)key_len;
    json_object_set_new(info, "loaded", json_integer(ld->ngws));
    ld->ngws++;
    return 0;
}

static int load_gwas(struct sim *s, json_t *doc, json_t *by_gwa)
{
    json_t *g;
    size_t i;
    json_array_foreach(json_object_get(doc, "gwas"), i, g)
    {
        const char *id = json_string_value(json_object_get(g, "id"));
        const char *ep = json_string_value(json_object_get(g, "endpoint"));
        char path[1200], err[256];
        X509 *cert = NULL;
        if (id == NULL || ep == NULL || s->ngwas == (int)ARRAY_LEN(s->gwas))
            continue;
        struct gwa_info *w = &s->gwas[s->ngwas];
        str_copy(w->id, sizeof w->id, id);
        if (w->endpoint[0] == '\0')
            str_copy(w->endpoint, sizeof w->endpoint, ep);
        snprintf(path, sizeof path, "%s/gwa/%s.crt", s->opt.pki, id);
        if (pki_load_cert(path, &cert, err, sizeof err) == 0) {
            w->pub = X509_get_pubkey(cert);
            X509_free(cert);
        } else {
            LOG(LOG_WARN, "no certificate for GWA; its wake-ups will be refused", LOG_S("gwa", id),
                LOG_S("error", err));
        }
        json_object_set_new(by_gwa, id, json_integer(s->ngwas));
        s->ngwas++;
    }
    return 0;
}

/* The model of a device follows its largest installation; a device whose
 * installations consume and produce (PV with a battery) gets the model
 * with both directions, so that it takes limits of either. */
static void device_model(json_t *insts, const char *device, enum steuerbox_kind *kind,
                         uint32_t *rated)
{
    json_t *it;
    size_t i;
    bool cons = false, prod = false;
    *kind = SB_HEAT_PUMP;
    *rated = 11000;
    json_int_t best = 0;
    json_array_foreach(insts, i, it)
    {
        const char *d = json_string_value(json_object_get(it, "device"));
        const char *dir = json_string_value(json_object_get(it, "direction"));
        json_int_t w = json_integer_value(json_object_get(it, "rated_power_w"));
        enum steuerbox_kind k;
        if (d == NULL || strcmp(d, device) != 0)
            continue;
        cons = cons || (dir && strcmp(dir, "production") != 0);
        prod = prod || (dir && strcmp(dir, "consumption") != 0);
        if (w <= best ||
            steuerbox_kind_parse(json_string_value(json_object_get(it, "kind")), &k) != 0)
            continue;
        best = w;
        *kind = k;
        *rated = (uint32_t)w;
    }
    if (cons && prod)
        *kind = SB_BATTERY;
}

static int cmp_dev_gw(const void *a, const void *b)
{
    const struct dev *x = a, *y = b;
    return x->gw < y->gw ? -1 : x->gw > y->gw ? 1 : (x->idx < y->idx ? -1 : x->idx > y->idx);
}

static int load_devices(struct sim *s, json_t *doc, json_t *by_smgw)
{
    json_t *devs = json_object_get(doc, "devices"), *insts = json_object_get(doc, "installations");
    json_t *it, *by_dev = json_object();
    size_t i;
    uint32_t n = 0;

    /* Installations grouped by device, so each device finds its own fast. */
    json_array_foreach(insts, i, it)
    {
        const char *d = json_string_value(json_object_get(it, "device"));
        if (d == NULL)
            continue;
        json_t *arr = json_object_get(by_dev, d);
        if (arr == NULL)
            json_object_set_new(by_dev, d, arr = json_array());
        json_array_append(arr, it);
    }
    s->devs = calloc(json_array_size(devs) ? json_array_size(devs) : 1, sizeof *s->devs);
    if (s->devs == NULL) {
        json_decref(by_dev);
        return -1;
    }
    json_array_foreach(devs, i, it)
    {
        const char *id = json_string_value(json_object_get(it, "id"));
        const char *gwid = json_string_value(json_object_get(it, "smgw"));
        json_t *info = gwid ? json_object_get(by_smgw, gwid) : NULL;
        json_t *loaded = info ? json_object_get(info, "loaded") : NULL;
        if (id == NULL || loaded == NULL || !reg_is_generic_id(id))
            continue;
        struct dev *d = &s->devs[n];
        str_copy(d->id, sizeof d->id, id);
        d->gw = (uint32_t)json_integer_value(loaded);
        d->idx = n++;
        json_t *fw = json_object_get(it, "failsafe_limit_w");
        json_t *fs = json_object_get(it, "failsafe_duration_s");
        d->failsafe_w = json_is_integer(fw) ? (uint32_t)json_integer_value(fw) : 4200;
        const char *kind = json_string_value(json_object_get(it, "kind"));
        d->sensor = kind && strcmp(kind, "sensor") == 0;
        d->failsafe_s = json_is_integer(fs) ? (uint32_t)json_integer_value(fs) : 7200;
    }
    qsort(s->devs, n, sizeof *s->devs, cmp_dev_gw);
    for (uint32_t k = 0; k < n; k++) {
        struct dev *d = &s->devs[k];
        struct gw *g = &s->gws[d->gw];
        enum steuerbox_kind kind;
        uint32_t rated;
        d->idx = k;
        d->sim = s;
        if (g->ndev == 0)
            g->first_dev = k;
        g->ndev++;
        device_model(json_object_get(by_dev, d->id), d->id, &kind, &rated);
        json_t *di;
        size_t k2;
        json_array_foreach(json_object_get(by_dev, d->id), k2, di)
        {
            const char *mp = json_string_value(json_object_get(di, "metering_point"));
            if (mp && !d->mp[0] && reg_is_metering_point(mp))
                str_copy(d->mp, sizeof d->mp, mp);
        }
        /* After the sort: the model keeps a pointer to the id. */
        if (steuerbox_init(&d->sb, d->id, kind, rated, (uint64_t)k * 2654435761u + 17,
                           d->failsafe_w, d->failsafe_s) != 0) {
            LOG(LOG_ERROR, "device model refused its parameters", LOG_S("device", d->id));
            json_decref(by_dev);
            return -1;
        }
        if (s->opt.heartbeat_s > 0)
            steuerbox_set_heartbeat_timeout(&d->sb, (uint32_t)s->opt.heartbeat_s);
    }
    s->ndevs = n;
    json_decref(by_dev);
    return 0;
}

int fleet_load(struct sim *s)
{
    json_error_t jerr;
    char err[512];
    struct load ld = {s, NULL, json_object(), 0, 0};
    json_t *by_gwa = json_object(), *g;
    size_t i;
    int rc = -1;

    ld.doc = json_load_file(s->opt.registry, 0, &jerr);
    if (ld.doc == NULL) {
        LOG(LOG_ERROR, "cannot read the registry document", LOG_S("path", s->opt.registry),
            LOG_S("error", jerr.text), LOG_I("line", jerr.line));
        goto out;
    }
    load_gwas(s, ld.doc, by_gwa);
    json_array_foreach(json_object_get(ld.doc, "smgws"), i, g)
    {
        const char *id = json_string_value(json_object_get(g, "id"));
        json_t *gi = json_object_get(by_gwa, json_string_value(json_object_get(g, "gwa")));
        if (id && reg_is_smgw_id(id))
            json_object_set_new(
                ld.by_smgw, id,
                json_pack("{s:I}", "gwa", (json_int_t)(gi ? json_integer_value(gi) : -1)));
    }
    ld.cap = (uint32_t)json_object_size(ld.by_smgw);
    s->gws = calloc(ld.cap ? ld.cap : 1, sizeof *s->gws);
    if (s->gws == NULL)
        goto out;
    rc = pki_bundle_read(s->opt.bundle, on_bundle_entry, &ld, err, sizeof err);
    if (rc != 0) {
        LOG(LOG_ERROR, "cannot read the gateway credentials", LOG_S("path", s->opt.bundle),
            LOG_S("error", err));
        rc = -1;
        goto out;
    }
    s->ngws = ld.ngws;
    if (s->ngws < ld.cap)
        LOG(LOG_WARN, "gateways without credentials are not simulated", LOG_I("registry", ld.cap),
            LOG_I("with_credentials", s->ngws));
    if (load_devices(s, ld.doc, ld.by_smgw) != 0)
        goto out;
    s->gw_slots = slots_for(s->ngws);
    s->dev_slots = slots_for(s->ndevs);
    s->gw_index = calloc(s->gw_slots, sizeof *s->gw_index);
    s->dev_index = calloc(s->dev_slots, sizeof *s->dev_index);
    if (s->gw_index == NULL || s->dev_index == NULL)
        goto out;
    for (uint32_t k = 0; k < s->ngws; k++)
        table_put(s->gw_index, s->gw_slots, s->gws[k].id, k);
    for (uint32_t k = 0; k < s->ndevs; k++)
        table_put(s->dev_index, s->dev_slots, s->devs[k].id, k);
    rc = 0;
out:
    json_decref(ld.doc);
    json_decref(ld.by_smgw);
    json_decref(by_gwa);
    return rc;
}

void fleet_free(struct sim *s)
{
    for (uint32_t k = 0; k < s->ngws; k++) {
        free(s->gws[k].cert_der);
        free(s->gws[k].key_der);
        SSL_SESSION_free(s->gws[k].gwa_session);
    }
    for (uint32_t k = 0; k < s->ndevs; k++)
        steuerbox_fini(&s->devs[k].sb);
    for (int k = 0; k < s->ngwas; k++)
        EVP_PKEY_free(s->gwas[k].pub);
    free(s->gws);
    free(s->devs);
    free(s->gw_index);
    free(s->dev_index);
}
