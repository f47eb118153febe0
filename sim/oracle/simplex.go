package oracle

import (
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize/convex/lp"
)

// simplex solves the problem exactly with gonum's dense simplex: columns
// x, then one overflow per demand row, then one slack per capacity row,
// whose identity block is a feasible starting basis (no phase I). Dense
// and refactorised every pivot, it is for small instances and for checking
// the interior point method.
func (p *problem) simplex() (x, u []float64, err error) {
	nd, nb, nx := len(p.rows), len(p.bands), len(p.cols)
	rows, cols := nd+nb, nx+nd+nb
	A := mat.NewDense(rows, cols, nil)
	c := make([]float64, cols)
	for j, col := range p.cols {
		A.Set(int(col.row), j, 1)
		A.Set(nd+int(col.band), j, col.w)
		c[j] = col.cost
	}
	for i := 0; i < nd; i++ {
		A.Set(i, nx+i, 1)
		c[nx+i] = p.ucost[i]
	}
	for k := 0; k < nb; k++ {
		A.Set(nd+k, nx+nd+k, 1)
	}
	basic := make([]int, rows)
	for i := range basic {
		basic[i] = nx + i
	}
	_, sol, err := lp.Simplex(c, A, p.b, 0, basic)
	if err != nil {
		return nil, nil, err
	}
	x = make([]float64, nx)
	copy(x, sol[:nx])
	u = make([]float64, nd)
	copy(u, sol[nx:nx+nd])
	return x, u, nil
}
