package pickle

import (
	"errors"
	"fmt"
)

// Class stands for a class outside the allow-list that the Decoder's
// Records policy accepts: a pickle may instantiate it with NEWOBJ or
// NEWOBJ_EX, which gives an *Object record, but not call it.
type Class struct {
	Global Global
}

// Object is an instance of a record class (Class), kept as inert data: the
// arguments NEWOBJ gave it, the state BUILD set, and the items SETITEM(S)
// and APPEND(S) added when the class is a dict or list subclass. Nothing of
// the class runs: neither its __new__, __init__ nor __setstate__. This is
// how argparse.Namespace (state: the attribute dict) and yacs's CfgNode (a
// dict subclass: items, and state with its flags) decode.
type Object struct {
	Class Global
	// Args are NEWOBJ's arguments after the class (usually none).
	Args Tuple
	// State is what BUILD gave: usually the attribute *Dict, or a
	// (state, slotstate) Tuple; nil when the pickle has no BUILD.
	State any
	// Items holds a dict subclass's items (nil when none); List a list
	// subclass's.
	Items *Dict
	List  []any
}

// SetState implements BUILD: a second BUILD of attribute dicts adds to the
// first, as Python's default __setstate__ updates __dict__.
func (o *Object) SetState(state any) error {
	cur, ok1 := o.State.(*Dict)
	add, ok2 := state.(*Dict)
	if !ok1 || !ok2 {
		o.State = state
		return nil
	}
	for _, e := range add.entries {
		if err := cur.Set(e.Key, e.Value); err != nil {
			return err
		}
	}
	return nil
}

// setItems adds SETITEM(S)'s key-value pairs to a dict subclass's items.
func (o *Object) setItems(items []any) error {
	if o.Items == nil {
		o.Items = &Dict{}
	}
	return setItems(o.Items, items)
}

// record resolves a global outside the allow-list: a *Class when the
// Records policy accepts it, else a *ForbiddenError.
func (d *Decoder) record(g Global) (any, error) {
	if d.Records != nil && d.Records(g) {
		return &Class{Global: g}, nil
	}
	return nil, &ForbiddenError{Global: g}
}

// newObject implements NEWOBJ on a record class.
func (d *Decoder) newObject(c *Class, args Tuple) error {
	fa, err := d.finish(args)
	if err != nil {
		return err
	}
	d.push(&Object{Class: c.Global, Args: fa.(Tuple)})
	return nil
}

// errCallRecord is the reason a record class may not be called.
var errCallRecord = errors.New("calling it (REDUCE, INST or OBJ) would run its constructor; only instances " +
	"rebuilt with NEWOBJ and BUILD are read, as inert records")

// callError is the error for REDUCE, INST or OBJ on f, which is not
// Callable.
func callError(f any) error {
	if c, ok := f.(*Class); ok {
		return &ForbiddenError{Global: c.Global, Reason: errCallRecord.Error()}
	}
	return fmt.Errorf("%s is not callable", typeName(f))
}
