package engine

import (
	"hash/maphash"
	"math"
	"reflect"
)

// KeyHash returns a hash of keys of type K for routing rows to a keyed
// node's workers, and whether it is stable: the same in every process, so
// that state snapshotted by one run and restored by another is found on
// the worker its keys go to. Strings, integers, booleans and floats hash
// stably; other key types hash with a seed of this process.
func KeyHash[K comparable]() (hash func(K) uint64, stable bool) {
	switch reflect.TypeFor[K]().Kind() {
	case reflect.String:
		return func(k K) uint64 { return fnv(reflect.ValueOf(k).String()) }, true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(k K) uint64 { return mix(uint64(reflect.ValueOf(k).Int())) }, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return func(k K) uint64 { return mix(reflect.ValueOf(k).Uint()) }, true
	case reflect.Bool:
		return func(k K) uint64 {
			if reflect.ValueOf(k).Bool() {
				return mix(1)
			}
			return mix(0)
		}, true
	case reflect.Float32, reflect.Float64:
		return func(k K) uint64 { return mix(math.Float64bits(reflect.ValueOf(k).Float())) }, true
	}
	seed := maphash.MakeSeed()
	return func(k K) uint64 { return maphash.Comparable(seed, k) }, false
}

// fnv is 64-bit FNV-1a.
func fnv(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix is splitmix64's finaliser: nearby integers spread over the workers.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
