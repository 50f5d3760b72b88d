package fsm

import (
	"fmt"
	"strconv"
)

func (f *FSM) applyCreateTable(index uint64, c CreateTable) Result {
	if res, refused := f.proceduresRefuseLocked("table creation is"); refused {
		return res
	}
	if c.Name == "" || len(c.Placement) == 0 {
		return Result{Code: RejectInvalid, Reason: "a table needs a name and at least one region"}
	}
	if _, ok := f.st.Tables[c.Name]; ok {
		return Result{Code: RejectExists, Reason: fmt.Sprintf("table %q exists", c.Name)}
	}
	for _, dn := range c.Placement {
		if _, ok := f.st.Datanodes[dn]; !ok {
			return Result{Code: RejectNotFound, Reason: fmt.Sprintf("placement names unknown datanode %d", dn)}
		}
	}
	t := &Table{Name: c.Name, CreatedAt: c.Time}
	var created []Region
	for _, dn := range c.Placement {
		r := &Region{ID: f.st.NextRegionID, Table: c.Name, Datanode: dn, Version: 1, MovedAt: c.Time}
		f.st.NextRegionID++
		f.st.Regions[r.ID] = r
		f.owners.add(dn, r.ID)
		t.Regions = append(t.Regions, r.ID)
		created = append(created, *r)
	}
	f.st.Tables[c.Name] = t
	f.addEvent(Event{Index: index, Time: c.Time, Type: EventTableCreated, By: c.By, Identity: c.Identity, Fields: map[string]string{
		"table": c.Name, "regions": strconv.Itoa(len(created))}})
	return Result{Applied: true, Regions: created}
}

func (f *FSM) applyDropTable(index uint64, c DropTable) Result {
	if res, refused := f.proceduresRefuseLocked("table drop is"); refused {
		return res
	}
	t, ok := f.st.Tables[c.Name]
	if !ok {
		return Result{Code: RejectNotFound, Reason: fmt.Sprintf("no table %q", c.Name)}
	}
	byOwner := map[uint64][]uint64{}
	for _, id := range t.Regions {
		if r, ok := f.st.Regions[id]; ok {
			byOwner[r.Datanode] = append(byOwner[r.Datanode], id)
		}
		delete(f.st.Regions, id)
	}
	for dn, ids := range byOwner {
		f.owners.remove(dn, ids...)
	}
	delete(f.st.Tables, c.Name)
	f.addEvent(Event{Index: index, Time: c.Time, Type: EventTableDropped, By: c.By, Identity: c.Identity, Fields: map[string]string{"table": c.Name}})
	return Result{Applied: true}
}
