/**
 * @file taskkit/args.h
 * @brief Placeholder: this module's declarations land with its issue.
 */
#ifndef TASKKIT_ARGS_H
#define TASKKIT_ARGS_H
#include "export.h"
#endif
