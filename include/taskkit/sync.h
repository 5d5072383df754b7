/**
 * @file taskkit/sync.h
 * @brief Placeholder: this module's declarations land with its issue.
 */
#ifndef TASKKIT_SYNC_H
#define TASKKIT_SYNC_H
#include "export.h"
#endif
