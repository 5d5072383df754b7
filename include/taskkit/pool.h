/**
 * @file taskkit/pool.h
 * @brief Placeholder: this module's declarations land with its issue.
 */
#ifndef TASKKIT_POOL_H
#define TASKKIT_POOL_H
#include "export.h"
#endif
